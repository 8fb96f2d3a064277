package decision

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// memStore is an in-memory Blockstore. Blocks put with putSized have no
// stored bytes: Get makes zeros of their size, so tests can serve large
// blocks without holding them.
type memStore struct {
	mu      sync.Mutex
	blocks  map[string]block.Block
	sizes   map[string]int
	gets    int
	lookups int   // GetSize calls
	err     error // returned by every call when set
	// onSize, when set, is called at the start of every GetSize, without
	// the store's lock: a test can change the store during a lookup.
	onSize func(c cid.Cid)
}

func newMemStore() *memStore {
	return &memStore{blocks: make(map[string]block.Block), sizes: make(map[string]int)}
}

func (s *memStore) put(b block.Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks[b.CID.KeyString()] = b
}

func (s *memStore) putSized(c cid.Cid, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes[c.KeyString()] = size
}

func (s *memStore) delete(c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blocks, c.KeyString())
	delete(s.sizes, c.KeyString())
}

func (s *memStore) Get(_ context.Context, c cid.Cid) (block.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.err != nil {
		return block.Block{}, s.err
	}
	if b, ok := s.blocks[c.KeyString()]; ok {
		return b, nil
	}
	if n, ok := s.sizes[c.KeyString()]; ok {
		return block.Block{CID: c, Data: make([]byte, n)}, nil
	}
	return block.Block{}, fmt.Errorf("get %s: %w", c, block.ErrNotFound)
}

func (s *memStore) GetSize(_ context.Context, c cid.Cid) (int, error) {
	if s.onSize != nil {
		s.onSize(c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if s.err != nil {
		return 0, s.err
	}
	if b, ok := s.blocks[c.KeyString()]; ok {
		return len(b.Data), nil
	}
	if n, ok := s.sizes[c.KeyString()]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("size %s: %w", c, block.ErrNotFound)
}

func (s *memStore) lookupCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

func (s *memStore) getCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets
}

// sent is one message the fake sender was asked to send.
type sent struct {
	p   peer.ID
	m   *message.Message
	err error
}

// fakeSender records messages. Sends to a peer in gates wait until the
// gate is closed or the context is done; sends to a peer in fail fail;
// every send takes delay (use inside a synctest bubble).
type fakeSender struct {
	delay time.Duration

	mu          sync.Mutex
	gates       map[peer.ID]chan struct{}
	fail        map[peer.ID]error
	log         []sent
	inflight    map[peer.ID]int
	maxInflight map[peer.ID]int
	cancelled   int // sends that returned because ctx was done
}

func newFakeSender() *fakeSender {
	return &fakeSender{
		gates:       make(map[peer.ID]chan struct{}),
		fail:        make(map[peer.ID]error),
		inflight:    make(map[peer.ID]int),
		maxInflight: make(map[peer.ID]int),
	}
}

// gate makes sends to p wait until the returned function is called.
func (s *fakeSender) gate(p peer.ID) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.gates[p] = ch
	s.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (s *fakeSender) SendMessage(ctx context.Context, p peer.ID, m *message.Message) error {
	s.mu.Lock()
	gate, fail := s.gates[p], s.fail[p]
	s.inflight[p]++
	s.maxInflight[p] = max(s.maxInflight[p], s.inflight[p])
	s.mu.Unlock()

	var err error
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil && s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		err = fail
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[p]--
	if ctx.Err() != nil {
		s.cancelled++
	}
	s.log = append(s.log, sent{p, m, err})
	return err
}

// messages returns the messages sent (successfully) so far.
func (s *fakeSender) messages() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sent
	for _, x := range s.log {
		if x.err == nil {
			out = append(out, x)
		}
	}
	return out
}

// to returns the messages successfully sent to p.
func (s *fakeSender) to(p peer.ID) []*message.Message {
	var out []*message.Message
	for _, x := range s.messages() {
		if x.p == p {
			out = append(out, x.m)
		}
	}
	return out
}

// answers summarises what p received: for each CID string, "block", "have"
// or "dont-have", in order of arrival.
func (s *fakeSender) answers(p peer.ID) []string {
	var out []string
	for _, m := range s.to(p) {
		for _, pr := range m.Presences {
			if pr.Type == message.Have {
				out = append(out, "have "+pr.CID.String())
			} else {
				out = append(out, "dont-have "+pr.CID.String())
			}
		}
		for _, b := range m.Blocks {
			out = append(out, "block "+b.CID.String())
		}
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestEngine starts an engine whose Close runs at the end of the test.
// Inside a synctest bubble the caller must Close it itself before the
// bubble ends.
func newTestEngine(t *testing.T, bs Blockstore, s Sender, cfg Config) *Engine {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	return New(bs, s, cfg)
}

// testBlock makes a verified raw block of data.
func testBlock(t testing.TB, data string) block.Block {
	t.Helper()
	b, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantBlock(c cid.Cid) message.Entry {
	return message.Entry{CID: c, Priority: 1, WantType: wantlist.WantBlock}
}

func wantHave(c cid.Cid) message.Entry {
	return message.Entry{CID: c, Priority: 1, WantType: wantlist.WantHave}
}

func cancel(c cid.Cid) message.Entry { return message.Entry{CID: c, Cancel: true} }

func msg(wants ...message.Entry) *message.Message { return &message.Message{Wants: wants} }
