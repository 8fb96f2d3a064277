// Package node runs a bsfs node on a repository: offline, over its
// blockstore and cache alone, or online, with the libp2p host, the Bitswap
// exchange, content routing, AutoNAT reachability and metrics that Start
// assembles from the config and the command line's overrides.
package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/metrics"
	"github.com/bsfs/bsfs/repo"
	"github.com/bsfs/bsfs/unixfs"
)

// ConnectTimeout bounds one swarm connect.
const ConnectTimeout = 30 * time.Second

// Node is a repository opened in this process. Offline (host and exchange
// nil) it reads and writes the local blockstore only; the daemon runs it
// online.
type Node struct {
	repo   *repo.Repo
	host   host.Host          // nil offline
	ex     *exchange.Exchange // nil offline
	router *routing.Router    // nil offline or without the DHT
	// delegated finds providers through Routing.DelegatedRouters; nil
	// offline, without routers or with routing "dht" or "none".
	delegated *routing.Delegated
	reach     *reachability   // nil offline
	metrics   *metrics.Server // nil offline or with metrics off
	// readLatency observes FUSE reads of a mount on this node (nil
	// without metrics).
	readLatency func(seconds float64)
	shared      *blockstore.Blockstore // the --blocks directory, or nil
	// strategy is Provide.Strategy, what the router is given to announce.
	strategy string
	// background runs announce and republish, which stopAnnounce ends
	// (nil offline).
	background   sync.WaitGroup
	stopAnnounce context.CancelFunc

	cacheMu sync.Mutex
	cache   *cache.Cache // guarded by cacheMu; opened by the daemon or on first use

	// publishMu orders publications, so that sequence numbers follow on.
	publishMu sync.Mutex

	namesMu sync.Mutex // guards the fields below, made on first use
	names   *names.Resolver
	dns     *names.DNS
	// ownDelegated are the delegated routers of an offline node's names.
	ownDelegated *routing.Delegated
}

var _ api.Backend = (*Node)(nil)

// New returns the node of r, offline. Its Close closes r.
func New(r *repo.Repo) *Node { return &Node{repo: r} }

// Online reports whether n fetches from peers.
func (n *Node) Online() bool { return n.ex != nil }

// Identity returns the peer ID and, online, the host's addresses and
// reachability. Offline there are no addresses: the config's are only what
// a daemon would try to listen on.
func (n *Node) Identity(ctx context.Context) (api.Identity, error) {
	if n.host != nil {
		id := hostIdentity(n.host)
		if n.reach != nil {
			id.Reachability = n.reach.String()
		}
		return id, nil
	}
	key, err := n.repo.PrivKey()
	if err != nil {
		return api.Identity{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return api.Identity{}, fmt.Errorf("peer ID: %w", err)
	}
	return api.Identity{ID: id.String()}, nil
}

// MetricsAddr is the address metrics are served on, "" if they are not.
func (n *Node) MetricsAddr() string {
	if n.metrics == nil {
		return ""
	}
	return n.metrics.Addr().String()
}

// hostIdentity returns h's peer ID and the addresses it announces: those
// it listens on and those its peers observed it at and confirmed.
func hostIdentity(h host.Host) api.Identity {
	id := h.ID().String()
	out := api.Identity{ID: id}
	for _, a := range h.Addrs() {
		out.Addrs = append(out.Addrs, a.String()+"/p2p/"+id)
	}
	return out
}

// PutBlock stores data under the CID prefix gives it; online, the exchange
// is told so that waiting peers are served.
func (n *Node) PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error) {
	b, err := block.New(prefix, data)
	if err != nil {
		return cid.Undef, err
	}
	if err := n.repo.Blockstore().Put(ctx, b); err != nil {
		return cid.Undef, err
	}
	if n.ex != nil {
		if err := n.ex.NotifyNewBlocks(ctx, b); err != nil {
			return cid.Undef, err
		}
	}
	if n.router != nil && n.strategy == repo.ProvideAll {
		n.router.ProvideAsync(b.CID)
	}
	return b.CID, nil
}

// GetBlock reads c locally offline and through the exchange online.
func (n *Node) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	if err := block.CheckCID(c); err != nil {
		return block.Block{}, err
	}
	if n.ex != nil {
		return n.ex.GetBlock(ctx, c)
	}
	return n.repo.Blockstore().Get(ctx, c)
}

// BlockSize returns the size of the locally stored block c.
func (n *Node) BlockSize(ctx context.Context, c cid.Cid) (int, error) {
	if err := block.CheckCID(c); err != nil {
		return 0, err
	}
	return n.repo.Blockstore().GetSize(ctx, c)
}

// RemoveBlock deletes the locally stored block c.
func (n *Node) RemoveBlock(ctx context.Context, c cid.Cid) error {
	return n.repo.Blockstore().Delete(ctx, c)
}

// Connect dials the peer addr names (it must end in /p2p/<id>).
func (n *Node) Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	if n.ex == nil {
		return "", api.ErrNoDaemon
	}
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := n.ex.Network().Connect(ctx, *ai); err != nil {
		return "", fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return ai.ID, nil
}

// Peers lists the open connections, sorted.
func (n *Node) Peers(ctx context.Context) ([]string, error) {
	if n.host == nil {
		return nil, api.ErrNoDaemon
	}
	var out []string
	for _, c := range n.host.Network().Conns() {
		out = append(out, c.RemoteMultiaddr().String()+"/p2p/"+c.RemotePeer().String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Wantlist returns what the exchange wants.
func (n *Node) Wantlist(ctx context.Context) ([]cid.Cid, error) {
	if n.ex == nil {
		return nil, api.ErrNoDaemon
	}
	return n.ex.Wantlist(), nil
}

// GetBlocks fetches through the exchange online, reads the local store
// offline.
func (n *Node) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	if n.ex != nil {
		return n.ex.GetBlocks(ctx, cids)
	}
	return unixfs.Local(n.repo.Blockstore()).GetBlocks(ctx, cids)
}

// notifyBatch is how many added blocks the exchange is told about at once.
const notifyBatch = 32

// BlockWriter stores blocks in the blockstore and, online, tells the
// exchange about them a batch at a time. GC waits until it is closed.
func (n *Node) BlockWriter(ctx context.Context) (api.BlockWriter, error) {
	c, err := n.cacheOf(ctx)
	if err != nil {
		return nil, err
	}
	return &repoWriter{n: n, endAdd: c.BeginAdd()}, nil
}

type repoWriter struct {
	n       *Node
	endAdd  func()          // lets GC run again
	ctx     context.Context // of the latest Put, for the last notification
	pending []block.Block   // stored, not yet notified
}

// Put stores b and, online, queues it for the exchange.
func (w *repoWriter) Put(ctx context.Context, b block.Block) error {
	if err := w.n.repo.Blockstore().Put(ctx, b); err != nil {
		return err
	}
	if w.n.ex == nil {
		return nil
	}
	w.ctx = ctx
	w.pending = append(w.pending, b)
	if len(w.pending) < notifyBatch {
		return nil
	}
	return w.notify()
}

func (w *repoWriter) notify() error {
	if len(w.pending) == 0 {
		return nil
	}
	err := w.n.ex.NotifyNewBlocks(w.ctx, w.pending...)
	w.pending = w.pending[:0]
	return err
}

// Close tells the exchange of the blocks still queued and lets GC run.
func (w *repoWriter) Close() error {
	defer w.endAdd()
	return w.notify()
}

// AddRoot pins c, which has it announced online, and records it in the
// repository's roots.
func (n *Node) AddRoot(ctx context.Context, c cid.Cid) error {
	if err := n.Pin(ctx, c); err != nil {
		return err
	}
	return n.repo.AddRoot(c)
}

// Roots lists the repository's roots.
func (n *Node) Roots(context.Context) ([]cid.Cid, error) { return n.repo.Roots() }

// Close waits for the goroutines n started, then closes the exchange, the
// host, the cache and the repository, in that order.
func (n *Node) Close() error {
	var errs []error
	if n.stopAnnounce != nil {
		n.stopAnnounce()
	}
	n.background.Wait()
	if n.metrics != nil {
		errs = append(errs, n.metrics.Close())
	}
	if n.ex != nil {
		errs = append(errs, n.ex.Close())
	}
	if n.router != nil {
		errs = append(errs, n.router.Close())
	}
	if n.delegated != nil {
		errs = append(errs, n.delegated.Close())
	}
	if n.ownDelegated != nil {
		errs = append(errs, n.ownDelegated.Close())
	}
	if n.dns != nil {
		errs = append(errs, n.dns.Close())
	}
	if n.reach != nil {
		errs = append(errs, n.reach.close())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.cache != nil {
		errs = append(errs, n.cache.Close())
	}
	if n.shared != nil {
		errs = append(errs, n.shared.Close())
	}
	errs = append(errs, n.repo.Close())
	return errors.Join(errs...)
}
