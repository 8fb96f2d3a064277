package main

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
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/metrics"
	"github.com/bsfs/bsfs/repo"
	"github.com/bsfs/bsfs/unixfs"
)

// connectTimeout bounds one swarm connect.
const connectTimeout = 30 * time.Second

// errNoDaemon is returned by operations that need the network when no
// daemon runs.
var errNoDaemon = errors.New("this command needs a running daemon: start one with `bsfs daemon`")

// identity is a node's peer ID, the addresses it can be reached at, each
// ending in /p2p/<id>, and, online, its reachability from AutoNAT
// ("public", "private" or "unknown").
type identity struct {
	ID           string
	Addrs        []string
	Reachability string `json:",omitempty"`
}

// node is what the commands talk to: the repository opened in this process,
// or a running daemon through its local API.
type node interface {
	Identity(ctx context.Context) (identity, error)
	PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error)
	// GetBlock returns c's bytes; a daemon fetches them from its peers
	// until ctx ends.
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
	BlockSize(ctx context.Context, c cid.Cid) (int, error)
	RemoveBlock(ctx context.Context, c cid.Cid) error
	Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error)
	// Peers returns the remote address of each open connection, with /p2p/.
	Peers(ctx context.Context) ([]string, error)
	Wantlist(ctx context.Context) ([]cid.Cid, error)
	// GetBlocks delivers cids' blocks as they arrive, each checked
	// against its CID, and closes the channel when all are delivered or
	// ctx ends; offline, it delivers the local ones.
	GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error)
	// BlockWriter stores blocks until closed; a daemon tells its peers.
	BlockWriter(ctx context.Context) (blockWriter, error)
	// AddRoot records c among the roots this node added.
	AddRoot(ctx context.Context, c cid.Cid) error
	// Roots lists the roots this node added, oldest first.
	Roots(ctx context.Context) ([]cid.Cid, error)
	// FindProviders looks up c's providers in the content routing, up to
	// max, and calls found with each as it is found.
	FindProviders(ctx context.Context, c cid.Cid, max int, found func(peer.ID) error) error
	// Provide announces c, stored here, to the content routing.
	Provide(ctx context.Context, c cid.Cid) error
	// Stat returns the exchange's counters (`bsfs stat`).
	Stat(ctx context.Context) (exchange.Stats, error)
	// Ledger returns the decision engine's ledger of p.
	Ledger(ctx context.Context, p peer.ID) (decision.LedgerStat, error)
	// PeerWantlist returns what p wants from this node.
	PeerWantlist(ctx context.Context, p peer.ID) ([]cid.Cid, error)
	// Pin pins c's DAG recursively, fetching what is missing online.
	Pin(ctx context.Context, c cid.Cid) error
	// Unpin unpins c: its blocks become evictable.
	Unpin(ctx context.Context, c cid.Cid) error
	// Pins lists the pinned roots, oldest first.
	Pins(ctx context.Context) ([]cid.Cid, error)
	// GC deletes the blocks no pin keeps.
	GC(ctx context.Context) (cache.GCResult, error)
	// CacheUsage returns the cache's quota and use.
	CacheUsage(ctx context.Context) (cache.Usage, error)
	// NewSession returns a block getter whose fetches share a session
	// until ctx ends (offline: the local store).
	NewSession(ctx context.Context) unixfs.BlockGetter
	Close() error
}

// blockWriter stores a stream of blocks. Close ends the stream and
// returns the first error of storing any of them.
type blockWriter interface {
	Put(ctx context.Context, b block.Block) error
	Close() error
}

// online reports whether n fetches from peers.
func online(n node) bool {
	rn, ok := n.(*repoNode)
	return !ok || rn.ex != nil
}

// nodeBlocks reads blocks through n: the unixfs.BlockGetter of add, cat
// and get.
type nodeBlocks struct{ n node }

var _ unixfs.BlockGetter = nodeBlocks{}

// GetBlock returns c's block, checked against c.
func (b nodeBlocks) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	data, err := b.n.GetBlock(ctx, c)
	if err != nil {
		return block.Block{}, err
	}
	return block.Verified(c, data)
}

// GetBlocks delivers cids' blocks as they arrive.
func (b nodeBlocks) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error) {
	return b.n.GetBlocks(ctx, cids)
}

// repoNode is a repository opened in this process. Offline (host and
// exchange nil) it reads and writes the local blockstore only; the daemon
// runs it online.
type repoNode struct {
	repo   *repo.Repo
	host   host.Host          // nil offline
	ex     *exchange.Exchange // nil offline
	router *routing.Router    // nil offline or without the DHT
	// delegated finds providers through Routing.DelegatedRouters; nil
	// offline, without routers or with routing "dht" or "none".
	delegated *routing.Delegated
	reach     *reachability   // nil offline
	metrics   *metrics.Server // nil offline or with metrics off
	sessions  apiSessions
	// readLatency observes FUSE reads of a mount on this node (nil
	// without metrics).
	readLatency func(seconds float64)
	shared      *blockstore.Blockstore // the --blocks directory, or nil
	// strategy is Provide.Strategy, what the router is given to announce.
	strategy string
	// background runs announce, which stopAnnounce ends (nil offline).
	background   sync.WaitGroup
	stopAnnounce context.CancelFunc

	cacheMu sync.Mutex
	cache   *cache.Cache // guarded by cacheMu; opened by the daemon or on first use
}

var _ node = (*repoNode)(nil)

// Identity returns the peer ID and, online, the host's addresses and
// reachability. Offline there are no addresses: the config's are only what
// a daemon would try to listen on.
func (n *repoNode) Identity(ctx context.Context) (identity, error) {
	if n.host != nil {
		id := hostIdentity(n.host)
		if n.reach != nil {
			id.Reachability = n.reach.String()
		}
		return id, nil
	}
	key, err := n.repo.PrivKey()
	if err != nil {
		return identity{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return identity{}, fmt.Errorf("peer ID: %w", err)
	}
	return identity{ID: id.String()}, nil
}

// hostIdentity returns h's peer ID and the addresses it announces: those
// it listens on and those its peers observed it at and confirmed.
func hostIdentity(h host.Host) identity {
	id := h.ID().String()
	out := identity{ID: id}
	for _, a := range h.Addrs() {
		out.Addrs = append(out.Addrs, a.String()+"/p2p/"+id)
	}
	return out
}

// PutBlock stores data under the CID prefix gives it; online, the exchange
// is told so that waiting peers are served.
func (n *repoNode) PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error) {
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
func (n *repoNode) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := block.CheckCID(c); err != nil {
		return nil, err
	}
	var (
		b   block.Block
		err error
	)
	if n.ex != nil {
		b, err = n.ex.GetBlock(ctx, c)
	} else {
		b, err = n.repo.Blockstore().Get(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	return b.Data, nil
}

// BlockSize returns the size of the locally stored block c.
func (n *repoNode) BlockSize(ctx context.Context, c cid.Cid) (int, error) {
	if err := block.CheckCID(c); err != nil {
		return 0, err
	}
	return n.repo.Blockstore().GetSize(ctx, c)
}

// RemoveBlock deletes the locally stored block c.
func (n *repoNode) RemoveBlock(ctx context.Context, c cid.Cid) error {
	return n.repo.Blockstore().Delete(ctx, c)
}

// Connect dials the peer addr names (it must end in /p2p/<id>).
func (n *repoNode) Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	if n.ex == nil {
		return "", errNoDaemon
	}
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := n.ex.Network().Connect(ctx, *ai); err != nil {
		return "", fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return ai.ID, nil
}

// Peers lists the open connections, sorted.
func (n *repoNode) Peers(ctx context.Context) ([]string, error) {
	if n.host == nil {
		return nil, errNoDaemon
	}
	var out []string
	for _, c := range n.host.Network().Conns() {
		out = append(out, c.RemoteMultiaddr().String()+"/p2p/"+c.RemotePeer().String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Wantlist returns what the exchange wants.
func (n *repoNode) Wantlist(ctx context.Context) ([]cid.Cid, error) {
	if n.ex == nil {
		return nil, errNoDaemon
	}
	return n.ex.Wantlist(), nil
}

// GetBlocks fetches through the exchange online, reads the local store
// offline.
func (n *repoNode) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error) {
	if n.ex != nil {
		return n.ex.GetBlocks(ctx, cids)
	}
	return unixfs.Local(n.repo.Blockstore()).GetBlocks(ctx, cids)
}

// notifyBatch is how many added blocks the exchange is told about at once.
const notifyBatch = 32

// BlockWriter stores blocks in the blockstore and, online, tells the
// exchange about them a batch at a time. GC waits until it is closed.
func (n *repoNode) BlockWriter(ctx context.Context) (blockWriter, error) {
	c, err := n.cacheOf(ctx)
	if err != nil {
		return nil, err
	}
	return &repoWriter{n: n, endAdd: c.BeginAdd()}, nil
}

type repoWriter struct {
	n       *repoNode
	endAdd  func()          // lets GC run again
	ctx     context.Context // of the latest Put, for the last notification
	pending []block.Block   // stored, not yet notified
}

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

func (w *repoWriter) Close() error {
	defer w.endAdd()
	return w.notify()
}

// AddRoot pins c, which has it announced online, and records it in the
// repository's roots.
func (n *repoNode) AddRoot(ctx context.Context, c cid.Cid) error {
	if err := n.Pin(ctx, c); err != nil {
		return err
	}
	return n.repo.AddRoot(c)
}

// Roots lists the repository's roots.
func (n *repoNode) Roots(context.Context) ([]cid.Cid, error) { return n.repo.Roots() }

// Close closes the exchange, the host, the cache and the repository, in
// that order.
func (n *repoNode) Close() error {
	var errs []error
	if n.stopAnnounce != nil {
		n.stopAnnounce()
	}
	n.background.Wait()
	n.closeSessions()
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
