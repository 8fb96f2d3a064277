// Package exchange is the Bitswap exchange: it fetches blocks this node
// wants from its peers and serves the blocks it has to theirs.
//
// An Exchange wires the parts together: the network (libp2p streams), the
// want manager (what we want, per-peer message queues), the decision engine
// (what peers want from us) and the blockstore both sides share. Blocks that
// arrive are checked against their CID by the decoder, stored, handed to
// every waiter once, and cancelled at the other peers.
//
// HTTP gateways (trustless, `?format=raw`, see package httpnet) are one more
// kind of source beside Bitswap peers: a provider record naming a gateway
// makes it a peer under the provider's ID, which the want manager sends
// wantlists to and the sessions ask like any other; its answers come back
// as Bitswap messages and take the same path (checked, stored, counted,
// cancelled). A peer reachable over libp2p is asked over Bitswap instead.
package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/exchange/httpnet"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/session"
	"github.com/bsfs/bsfs/exchange/wantmanager"
)

// Blockstore is where the exchange reads the blocks it serves and stores the
// blocks it fetches.
type Blockstore interface {
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
	GetSize(ctx context.Context, c cid.Cid) (int, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Put(ctx context.Context, b block.Block) error
}

// expecter is a Blockstore that prepares for blocks about to be put,
// without waiting: told of those asked of peers, it does so during the
// round trip rather than when they arrive.
type expecter interface {
	Expect(cids []cid.Cid)
}

// ErrClosed is returned by calls on a closed Exchange.
var ErrClosed = errors.New("exchange closed")

// Config configures an Exchange. The zero value is usable.
type Config struct {
	Network network.Config // its Protocols are the Bitswap protocol IDs spoken
	Wants   wantmanager.Config
	Engine  decision.Config
	Session session.Config
	// BlockLatency, if set, is given the seconds from a GetBlock(s) call
	// to the delivery of each block it asked for (a Prometheus
	// histogram's Observe fits).
	BlockLatency func(seconds float64)
	// Providers, if set, is asked for providers of a block no connected
	// peer has (after Session.ProviderDelay); the exchange connects to them,
	// over HTTP to those whose addresses name a trustless gateway.
	Providers ProviderFinder
	// Stored, if set, is told of the blocks fetched from peers (or HTTP
	// gateways) once stored: Provide.Strategy "all" announces them.
	Stored Announcer
	// HTTP, if set, turns on retrieval from trustless HTTP gateways.
	HTTP   *httpnet.Config
	Logger *slog.Logger
}

// Announcer is told of stored blocks, to announce them. ProvideAsync is
// called on the receive path and must not block.
type Announcer interface {
	ProvideAsync(cids ...cid.Cid)
}

// ProviderFinder finds peers that provide a block: content routing.
type ProviderFinder interface {
	FindProviders(ctx context.Context, c cid.Cid, max int) <-chan peer.AddrInfo
}

// Stats are the exchange's counters, the figures of `ipfs bitswap stat`.
type Stats struct {
	BlocksReceived, DataReceived     uint64 // blocks we wanted, and their bytes
	DupBlksReceived, DupDataReceived uint64
	UnwantedBlocks                   uint64 // blocks nobody here asked for
	InvalidBlocks                    uint64 // blocks refused by the store's checks or an HTTP gateway's CID check
	// HTTPBlocksReceived and HTTPDataReceived are the part of
	// BlocksReceived and DataReceived that came from HTTP gateways.
	HTTPBlocksReceived, HTTPDataReceived uint64
	HTTPGateways                         []string // connected gateways, "peer url"
	StoreErrors                          uint64   // good blocks the store failed to keep (a full disk)
	BlocksSent, DataSent                 uint64
	MessagesReceived, MessagesSent       uint64
	Wantlist                             int
	Peers                                []peer.ID
}

// Exchange is a Bitswap node's exchange.
type Exchange struct {
	bs     Blockstore
	net    *network.Network
	http   *httpnet.Network // nil without HTTP retrieval
	wm     *wantmanager.WantManager
	engine *decision.Engine
	log    *slog.Logger

	// ctx ends when Close begins: the goroutines the exchange starts
	// (in wg) end with it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sessionCfg session.Config
	providers  ProviderFinder
	latency    func(seconds float64) // may be nil
	stored     Announcer

	serving   sync.WaitGroup // the goroutines serving GetBlocks calls
	receiving chan struct{}  // a slot per message being stored, see goReceive

	mu         sync.Mutex // guards the fields below
	pending    pendingWants
	sessions   map[*session.Session]func() bool // stops the watch of the session's context
	sessionSeq uint64
	stats      Stats
	closed     bool
}

// New starts an exchange on h over bs.
func New(h host.Host, bs Blockstore, cfg Config) (*Exchange, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Network.Logger == nil {
		cfg.Network.Logger = cfg.Logger
	}
	if cfg.Wants.Logger == nil {
		cfg.Wants.Logger = cfg.Logger
	}
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = cfg.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exchange{
		bs:         bs,
		log:        cfg.Logger,
		ctx:        ctx,
		cancel:     cancel,
		pending:    make(pendingWants),
		sessions:   make(map[*session.Session]func() bool),
		sessionCfg: cfg.Session,
		providers:  cfg.Providers,
		latency:    cfg.BlockLatency,
		stored:     cfg.Stored,
		receiving:  make(chan struct{}, maxReceiving),
	}
	if e.sessionCfg.Logger == nil {
		e.sessionCfg.Logger = cfg.Logger
	}
	if e.providers != nil && e.sessionCfg.FindProviders == nil {
		e.sessionCfg.FindProviders = e.findProviders
	}
	if e.sessionCfg.Waited == nil {
		e.sessionCfg.Waited = e.waited
	}
	e.net = network.New(h, cfg.Network)
	if cfg.HTTP != nil {
		hc := *cfg.HTTP
		if hc.Logger == nil {
			hc.Logger = cfg.Logger
		}
		e.http = httpnet.New(hc, httpReceiver{e})
	}
	e.wm = wantmanager.New(wantNetwork{e}, cfg.Wants)
	e.engine = decision.New(bs, e.net, cfg.Engine)
	if err := e.net.Start(receiver{e}); err != nil {
		e.engine.Close()
		e.wm.Close()
		if e.http != nil {
			e.http.Close()
		}
		cancel()
		return nil, err
	}
	return e, nil
}

// Network returns the exchange's network, for connecting to peers.
func (e *Exchange) Network() *network.Network { return e.net }

// Engine returns the decision engine, whose ledgers are the node's ledgers.
func (e *Exchange) Engine() *decision.Engine { return e.engine }

// Close stops the exchange and waits for everything it started. Pending
// GetBlock calls return ErrClosed, and GetBlocks streams end with it.
func (e *Exchange) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.pending.closeAll()
	sessions := e.sessions
	e.sessions = map[*session.Session]func() bool{}
	e.mu.Unlock()
	e.cancel()
	e.serving.Wait()
	for s, stop := range sessions {
		e.stopWatch(stop)
		s.Close()
	}
	e.wg.Wait()
	var httpErr error
	if e.http != nil {
		httpErr = e.http.Close()
	}
	return errors.Join(e.net.Close(), httpErr, e.wm.Close(), e.engine.Close())
}

// GetBlock returns the block c from the local store or, failing that, from
// the peers. It returns when the block arrives, when it arrives but cannot
// be stored (the error names the store and the cause, such as a full
// disk), or when ctx ends (its error then wraps ctx.Err()).
func (e *Exchange) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	return e.getBlock(ctx, c, nil)
}

// GetBlocks fetches cids and delivers each block once, in the order they
// become available, on the returned stream. It ends when all have been
// delivered, when ctx ends, when the exchange closes, or early when a
// block arrives that cannot be stored; its Err then says why, as GetBlock
// of the first CID not delivered would (of the one not stored, for a
// store's failure). Every CID is checked first: an unsupported or
// oversized CID fails the whole call. Callers asking for the same CID at
// the same time share one want; it is cancelled on the wire once no caller
// waits for it. The call is a session of its own; use NewSession to share
// what is learnt about peers across calls.
func (e *Exchange) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	return e.getBlocks(ctx, cids, nil)
}

// getBlock serves a GetBlock call within sess (nil: a session of its own).
func (e *Exchange) getBlock(ctx context.Context, c cid.Cid, sess *session.Session) (block.Block, error) {
	st, err := e.getBlocks(ctx, []cid.Cid{c}, sess)
	if err != nil {
		return block.Block{}, err
	}
	if b, ok := <-st.C(); ok {
		return b, nil
	}
	return block.Block{}, st.Err()
}

// getBlocks serves a GetBlocks call; sess asks the peers for what is
// missing (nil: a session just for this call). The goroutine serving the
// stream is the exchange's: Close waits for it.
func (e *Exchange) getBlocks(ctx context.Context, cids []cid.Cid, sess *session.Session) (*block.Stream, error) {
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, fmt.Errorf("get block %s: %w", c, err)
		}
	}
	sub := newSubscription(cids)
	st := block.NewStream()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	// Subscribe before looking in the store, so a block that arrives in
	// between is not missed.
	for _, c := range sub.cids {
		e.pending.add(c, sub)
	}
	e.serving.Go(func() { e.serve(ctx, sub, sess, st) })
	return st, nil
}

// serve delivers sub's blocks on st: the local ones, then those the peers
// send, which sess (nil: a session for the call) asks them for. It stops
// when ctx ends or the exchange closes.
func (e *Exchange) serve(ctx context.Context, sub *subscription, sess *session.Session, st *block.Stream) {
	start := time.Now()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()
	sent := make(map[string]bool, len(sub.cids))
	send := func(b block.Block) bool {
		if e.latency != nil {
			e.latency(time.Since(start).Seconds())
		}
		if !st.Send(b, sctx.Done()) {
			return false
		}
		sent[block.Key(b.CID)] = true
		return true
	}
	defer func() {
		e.unsubscribe(sub, sess)
		st.Close(stopped(ctx, sub, sent))
	}()

	missing, ok := e.serveLocal(sctx, sub, send)
	if !ok {
		return
	}
	if len(missing) > 0 {
		if sess == nil {
			s := e.newSession(sctx)
			if s == nil {
				return // closed
			}
			defer e.closeSession(s)
			sess = s
		}
		sess.Want(missing)
		if x, ok := e.bs.(expecter); ok {
			x.Expect(missing)
		}
	}
	for len(sent) < len(sub.cids) {
		select {
		case b, ok := <-sub.ch:
			if !ok || !send(b) {
				return
			}
		case <-sctx.Done():
			return
		}
	}
}

// localReads is how many blocks one GetBlocks call reads from the store at
// once: a disk serves several reads in flight faster than one after the
// other, and each is hashed on a core of its own.
const localReads = 4

// serveLocal sends the blocks of sub the store has, in their order, and
// returns those it does not; false if ctx ended or a send failed.
func (e *Exchange) serveLocal(ctx context.Context, sub *subscription, send func(block.Block) bool) ([]cid.Cid, bool) {
	var missing []cid.Cid
	ok := true
	get := func(c cid.Cid) (block.Block, error) { return e.local(ctx, c) }
	block.GetAhead(sub.cids, localReads, get, func(c cid.Cid, b block.Block, err error) bool {
		switch {
		case err == nil:
			e.mu.Lock()
			e.pending.remove(c, sub)
			e.mu.Unlock()
			if sub.claim(c) && !send(b) {
				ok = false
			}
		case errors.Is(err, block.ErrNotFound):
			missing = append(missing, c)
		case ctx.Err() != nil:
			ok = false // the caller left: nothing to fetch, nothing to warn of
		default:
			e.log.Warn("bitswap: local read failed, fetching from peers", "cid", c, "err", err)
			missing = append(missing, c)
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	// A block that arrived during the local reads was delivered to sub:
	// asking peers for it again would bring it twice.
	return slices.DeleteFunc(missing, sub.has), true
}

// stopped is why a stream of sub's blocks, of which it sent those in
// sent, stopped: nil if it sent them all; else the store's failure that
// closed sub, ctx's end, or the exchange's, naming the first CID not sent.
func stopped(ctx context.Context, sub *subscription, sent map[string]bool) error {
	if err := sub.failure(); err != nil {
		return err
	}
	for _, c := range sub.cids {
		if sent[block.Key(c)] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("get block %s: %w", c, err)
		}
		return fmt.Errorf("get block %s: %w", c, ErrClosed)
	}
	return nil
}

// waited reports whether some call still waits for c: a block delivered
// while a session's want for it was on its way is not asked for again.
func (e *Exchange) waited(c cid.Cid) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending.wanted(c)
}

// local reads c from the store, answering the blocks the CID tells (see
// block.Inline) from the CID: no peer is asked for them.
func (e *Exchange) local(ctx context.Context, c cid.Cid) (block.Block, error) {
	if b, ok := block.Inline(c); ok {
		return b, nil
	}
	return e.bs.Get(ctx, c)
}

// unsubscribe removes sub's interest; wants nobody waits for any more are
// cancelled on the wire.
func (e *Exchange) unsubscribe(sub *subscription, sess *session.Session) {
	e.mu.Lock()
	var orphaned []cid.Cid
	for _, c := range sub.cids {
		if e.pending.remove(c, sub) {
			orphaned = append(orphaned, c)
		}
	}
	e.mu.Unlock()
	if len(orphaned) > 0 {
		e.wm.Cancel(orphaned)
	}
	if sess != nil {
		sess.Cancel(sub.cids)
	}
}

// NotifyNewBlocks tells the exchange that blks were just put in the store by
// this node: waiters get them and peers that wanted them are served.
func (e *Exchange) NotifyNewBlocks(ctx context.Context, blks ...block.Block) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	var done []cid.Cid
	for _, b := range blks {
		done = append(done, e.pending.deliver(b)...)
	}
	e.mu.Unlock()
	if len(done) > 0 {
		e.wm.Cancel(done)
	}
	e.engine.BlocksAdded(blks)
	return nil
}

// Stats returns the exchange's counters.
func (e *Exchange) Stats() Stats {
	e.mu.Lock()
	s := e.stats
	e.mu.Unlock()
	es := e.engine.Stats()
	s.BlocksSent, s.DataSent = es.BlocksSent, es.BytesSent
	ns := e.net.Stats()
	s.MessagesReceived, s.MessagesSent = ns.MessagesReceived, ns.MessagesSent
	s.Wantlist = e.wm.Stats().Wants
	s.Peers = e.net.Peers()
	if e.http != nil {
		hs := e.http.Stats()
		s.InvalidBlocks += hs.InvalidBlocks
		for _, g := range hs.Gateways {
			s.HTTPGateways = append(s.HTTPGateways, g.Peer.String()+" "+g.URL)
		}
	}
	return s
}

// Wantlist returns the CIDs this node wants, most urgent first.
func (e *Exchange) Wantlist() []cid.Cid { return e.wm.Wantlist() }

// WantlistSentTo returns our wants as peer p was told of them.
func (e *Exchange) WantlistSentTo(p peer.ID) []message.Entry { return e.wm.SentTo(p) }
