package decision

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// Blockstore is where the engine looks up and reads the blocks it serves.
type Blockstore interface {
	// Get returns the block for c; a missing block is an error for which
	// errors.Is(err, block.ErrNotFound) holds. A block its CID tells (see
	// block.Inline), such as the empty block, is expected to be there.
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
	// GetSize returns the size of the block for c, failing like Get.
	GetSize(ctx context.Context, c cid.Cid) (int, error)
}

// Sender sends messages to peers: the network. It encodes m for the
// protocol version p negotiated, leaving out what that version cannot
// carry. SendMessage blocks until m is written or the send fails, and
// returns early when ctx is cancelled.
type Sender interface {
	SendMessage(ctx context.Context, p peer.ID, m *message.Message) error
}

// MaxWantlistEntries is the default cap on the wants held for one peer.
const MaxWantlistEntries = 1024

// Defaults of Config.
const (
	// DefaultWorkers is the default number of workers. Sends are
	// synchronous and a worker serves one peer at a time, so this is how
	// many peers are served at once, and the block data held in memory
	// for sending is at most Workers x MaxMessageBytes (8 MiB).
	DefaultWorkers         = 8
	DefaultMaxMessageBytes = 1 << 20 // Config.MaxMessageBytes
	DefaultMaxQueuedBytes  = 1 << 20 // Config.MaxQueuedBytesPerPeer
	DefaultInlineHaveLimit = 1024    // Config.InlineHaveLimit
)

// Config configures an Engine. The zero value gives the defaults.
type Config struct {
	// Workers is the number of goroutines building and sending messages;
	// 0 means DefaultWorkers.
	Workers int
	// MaxWantlistEntries caps the wants held for one peer. A new want
	// beyond it takes the place of a want we cannot serve if we have its
	// block (counted in Stats.WantsEvicted), and is otherwise ignored
	// (Stats.WantsIgnored). 0 means MaxWantlistEntries.
	MaxWantlistEntries int
	// MaxMessageBytes is the size budget of one outgoing message (blocks,
	// HAVEs and DONT_HAVEs together); a single block larger than the
	// budget still goes out alone. 0 means DefaultMaxMessageBytes; it is
	// capped at message.MaxMessageSize.
	MaxMessageBytes int
	// MaxQueuedBytesPerPeer caps the block data read from the store for a
	// peer and not yet sent to it. 0 means DefaultMaxQueuedBytes.
	MaxQueuedBytesPerPeer int
	// InlineHaveLimit is the largest block sent in place of a HAVE to a
	// want-have. 0 means DefaultInlineHaveLimit; negative never inlines.
	InlineHaveLimit int
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxWantlistEntries <= 0 {
		c.MaxWantlistEntries = MaxWantlistEntries
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	c.MaxMessageBytes = min(c.MaxMessageBytes, message.MaxMessageSize)
	if c.MaxQueuedBytesPerPeer <= 0 {
		c.MaxQueuedBytesPerPeer = DefaultMaxQueuedBytes
	}
	if c.InlineHaveLimit == 0 {
		c.InlineHaveLimit = DefaultInlineHaveLimit
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats are the engine's counters.
type Stats struct {
	BlocksSent    uint64 // blocks in messages sent
	BytesSent     uint64 // block data in messages sent
	MessagesSent  uint64
	HavesSent     uint64
	DontHavesSent uint64
	SendErrors    uint64 // messages the Sender failed to send
	WantsIgnored  uint64 // wants over the cap, with an unsupported CID, or an identity CID
	WantsEvicted  uint64 // wants we cannot serve dropped for wants over the cap we can
	Peers         int    // peers with a ledger
	Wants         int    // wants held, all peers together
	QueuedTasks   int    // answers waiting for a worker
}

// LedgerStat is what the engine knows of one peer.
type LedgerStat struct {
	Peer           peer.ID
	BytesSent      uint64 // block data sent to the peer
	BytesReceived  uint64 // block data received from the peer
	BlocksSent     uint64
	BlocksReceived uint64
	WantlistSize   int
}

// ledger is the engine's record of one peer: what it wants and what we
// exchanged with it. It lives from the peer's first contact until it
// disconnects.
type ledger struct {
	wants                  *wantlist.Wantlist
	lacking                lacking // the wants whose block the store lacks
	bytesSent, bytesRecv   uint64
	blocksSent, blocksRecv uint64
}

// Engine serves the wants of peers from a Blockstore. It keeps a ledger
// per peer, queues answers in a task queue that is fair across peers, and
// sends them from a fixed set of workers.
//
// Lock order: Engine.mu is the only lock. It guards the ledgers, their
// wantlists, the task queue and the counters, and is never held while
// calling the Blockstore, the Sender or the Logger.
type Engine struct {
	// Read-only after New, no lock.
	bs     Blockstore
	sender Sender
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close; passed to the Sender
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	work    sync.Cond // signalled when a peer becomes ready or on Close; L is &mu
	closed  bool
	ledgers map[peer.ID]*ledger
	queue   *taskQueue
	stats   Stats
}

// New returns an engine serving from bs through s, its workers started.
func New(bs Blockstore, s Sender, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		bs:      bs,
		sender:  s,
		cfg:     cfg,
		log:     cfg.Logger,
		ledgers: make(map[peer.ID]*ledger),
		queue:   newTaskQueue(),
	}
	e.work.L = &e.mu
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go e.worker()
	}
	return e
}

// Close stops the workers, cancelling sends in progress, and waits for
// them. Tasks still queued are dropped. Calls after Close do nothing.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.work.Broadcast()
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Peers = len(e.ledgers)
	for _, l := range e.ledgers {
		s.Wants += l.wants.Len()
	}
	s.QueuedTasks = e.queue.ntasks
	return s
}

// Ledger returns the engine's ledger of p, and false if it holds none.
func (e *Engine) Ledger(p peer.ID) (LedgerStat, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.ledgers[p]
	if l == nil {
		return LedgerStat{}, false
	}
	return l.stat(p), true
}

// Ledgers returns every ledger the engine holds, in no particular order.
func (e *Engine) Ledgers() []LedgerStat {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]LedgerStat, 0, len(e.ledgers))
	for p, l := range e.ledgers {
		out = append(out, l.stat(p))
	}
	return out
}

// WantlistFor returns what p wants of us, highest priority first.
func (e *Engine) WantlistFor(p peer.ID) []wantlist.Entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.ledgers[p]; l != nil {
		return l.wants.Entries()
	}
	return nil
}

func (l *ledger) stat(p peer.ID) LedgerStat {
	return LedgerStat{
		Peer:           p,
		BytesSent:      l.bytesSent,
		BytesReceived:  l.bytesRecv,
		BlocksSent:     l.blocksSent,
		BlocksReceived: l.blocksRecv,
		WantlistSize:   l.wants.Len(),
	}
}

// remove drops the want for c and reports whether there was one.
func (l *ledger) remove(c cid.Cid) bool {
	l.lacking.remove(c)
	return l.wants.Remove(c)
}

// removeType drops the want for c if its type is t.
func (l *ledger) removeType(c cid.Cid, t wantlist.WantType) {
	if l.wants.RemoveType(c, t) {
		l.lacking.remove(c)
	}
}

func (l *ledger) clear() {
	l.wants.Clear()
	l.lacking.clear()
}

// ledgerLocked returns p's ledger, creating it. e.mu is held.
func (e *Engine) ledgerLocked(p peer.ID) *ledger {
	l := e.ledgers[p]
	if l == nil {
		l = &ledger{wants: wantlist.New()}
		e.ledgers[p] = l
	}
	return l
}
