// Package testnode starts real bsfs nodes for tests: a libp2p host on
// loopback, a flatfs blockstore in a temporary directory and an exchange
// over them, all closed when the test ends.
package testnode

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
)

// Node is a running test node.
type Node struct {
	Host  host.Host
	Store *blockstore.Blockstore
	Dir   string // the blockstore's flatfs directory
	Ex    *exchange.Exchange
}

// New starts a node whose exchange is configured by cfg.
func New(t testing.TB, cfg exchange.Config) *Node {
	t.Helper()
	return NewWrapped(t, cfg, nil)
}

// NewWrapped is New with the exchange storing through wrap's wrapper of the
// blockstore in dir, as a test that injects a disk fault needs.
func NewWrapped(t testing.TB, cfg exchange.Config, wrap func(bs *blockstore.Blockstore, dir string) exchange.Blockstore) *Node {
	t.Helper()
	return NewOn(t, network.HostConfig{}, cfg, wrap)
}

// NewOn is NewWrapped with the host configured by hcfg, on loopback TCP
// unless hcfg names listen addresses.
func NewOn(t testing.TB, hcfg network.HostConfig, cfg exchange.Config, wrap func(bs *blockstore.Blockstore, dir string) exchange.Blockstore) *Node {
	t.Helper()
	if len(hcfg.ListenAddrs) == 0 {
		hcfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := network.NewHost(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bs, err := blockstore.Open(dir, blockstore.Config{NoSync: true})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	var store exchange.Blockstore = bs
	if wrap != nil {
		store = wrap(bs, dir)
	}
	ex, err := exchange.New(h, store, cfg)
	if err != nil {
		h.Close()
		bs.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ex.Close()
		h.Close()
		bs.Close()
	})
	return &Node{Host: h, Store: bs, Dir: dir, Ex: ex}
}

// Connect connects host a to host b at b's addresses, failing the test
// unless it is done within 10 seconds.
func Connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}
