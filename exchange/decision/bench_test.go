package decision

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
)

// countSender counts the blocks sent and signals done when want arrive.
type countSender struct {
	blocks atomic.Int64
	want   int64
	done   chan struct{}
}

func (s *countSender) SendMessage(_ context.Context, _ peer.ID, m *message.Message) error {
	if s.blocks.Add(int64(len(m.Blocks))) == s.want {
		close(s.done)
	}
	return nil
}

// BenchmarkServe measures the engine end to end with a store and a network
// that cost nothing: 100 peers each want 100 blocks of 4 KiB, all present.
func BenchmarkServe(b *testing.B) {
	const peers, wants = 100, 100
	store := newMemStore()
	msgs := make([]*message.Message, peers)
	for i := range msgs {
		m := &message.Message{}
		for j := range wants {
			c := blocktest.CID(b, fmt.Sprint(i, "/", j))
			store.putSized(c, 4<<10)
			m.Wants = append(m.Wants, wantBlock(c))
		}
		msgs[i] = m
	}
	ids := make([]peer.ID, peers)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprint("peer", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		s := &countSender{want: peers * wants, done: make(chan struct{})}
		e := New(store, s, Config{Logger: quietLogger()})
		for i, m := range msgs {
			e.MessageReceived(context.Background(), ids[i], m)
		}
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d blocks sent", s.blocks.Load(), s.want)
		}
		e.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*peers*wants), "ns/block")
}

type nopSender struct{}

func (nopSender) SendMessage(context.Context, peer.ID, *message.Message) error { return nil }

// BenchmarkFullListFlood measures a flood over a full wantlist: the peer's
// list holds MaxWantlistEntries wants for blocks we lack, and each message
// brings 100,000 more, 10 of them want-blocks for blocks we have (among
// the first 1,000). The store is flatfs on disk, or in memory for the
// engine's own cost.
func BenchmarkFullListFlood(b *testing.B) {
	const entries, servable = 100_000, 10
	fill := &message.Message{}
	for i := range MaxWantlistEntries {
		fill.Wants = append(fill.Wants, wantHave(blocktest.CID(b, fmt.Sprint("fill ", i))))
	}
	var held []block.Block
	for i := range servable {
		held = append(held, testBlock(b, fmt.Sprint("held ", i)))
	}
	flood := &message.Message{}
	for i := range entries {
		if i%100 == 0 && i/100 < servable {
			flood.Wants = append(flood.Wants, wantBlock(held[i/100].CID))
		}
		flood.Wants = append(flood.Wants, wantHave(blocktest.CID(b, fmt.Sprint("flood ", i))))
	}
	disk := func(b *testing.B) Blockstore {
		bs, err := blockstore.Open(b.TempDir(), blockstore.Config{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bs.Close() })
		for _, blk := range held {
			if err := bs.Put(context.Background(), blk); err != nil {
				b.Fatal(err)
			}
		}
		return bs
	}
	mem := func(b *testing.B) Blockstore {
		s := newMemStore()
		for _, blk := range held {
			s.put(blk)
		}
		return s
	}
	for _, store := range []struct {
		name string
		open func(*testing.B) Blockstore
	}{{"flatfs", disk}, {"mem", mem}} {
		b.Run(store.name, func(b *testing.B) {
			e := New(store.open(b), nopSender{}, Config{Logger: quietLogger()})
			defer e.Close()
			ctx := context.Background()
			e.MessageReceived(ctx, "p", fill)
			b.ReportAllocs()
			for b.Loop() {
				e.MessageReceived(ctx, "p", flood)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(flood.Wants)), "ns/entry")
			if l, _ := e.Ledger("p"); l.WantlistSize > MaxWantlistEntries {
				b.Fatalf("%d wants held", l.WantlistSize)
			}
		})
	}
}

// BenchmarkServeFromDisk measures the serve path of one peer that wants
// 64 MiB in 256 KiB blocks from a flatfs store (each read from its file and
// verified), sent to a network that costs nothing: how fast the engine
// reads, verifies and hands over what a single peer asks for.
func BenchmarkServeFromDisk(b *testing.B) {
	const blocks, size = 256, 256 << 10
	bs, err := blockstore.Open(b.TempDir(), blockstore.Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bs.Close() })
	m := &message.Message{}
	for i := range blocks {
		blk := blocktest.NewBlock(b, blocktest.CID(b, "").Prefix(), blocktest.SeededBytes(size, uint64(i)))
		if err := bs.Put(context.Background(), blk); err != nil {
			b.Fatal(err)
		}
		m.Wants = append(m.Wants, wantBlock(blk.CID))
	}
	b.SetBytes(blocks * size)
	for b.Loop() {
		s := &countSender{want: blocks, done: make(chan struct{})}
		e := New(bs, s, Config{Logger: quietLogger()})
		e.MessageReceived(context.Background(), "p", m)
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d blocks sent", s.blocks.Load(), s.want)
		}
		e.Close()
	}
}
