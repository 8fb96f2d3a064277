package httpnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
)

// wait bounds every wait for an event; reaching it fails the test.
const wait = 10 * time.Second

// inbox is a Receiver that queues what it hears.
type inbox struct {
	msgs chan *message.Message
	ups  chan peer.ID
	down chan peer.ID
}

func newInbox() *inbox {
	return &inbox{msgs: make(chan *message.Message, 100), ups: make(chan peer.ID, 10), down: make(chan peer.ID, 10)}
}

func (r *inbox) ReceiveMessage(_ context.Context, _ peer.ID, m *message.Message) { r.msgs <- m }
func (r *inbox) GatewayConnected(p peer.ID)                                      { r.ups <- p }
func (r *inbox) GatewayDisconnected(p peer.ID)                                   { r.down <- p }

func (r *inbox) next(t *testing.T) *message.Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message from the gateway")
		return nil
	}
}

func (r *inbox) dropped(t *testing.T) {
	t.Helper()
	select {
	case <-r.down:
	case <-time.After(wait):
		t.Fatal("the gateway was not dropped")
	}
}

// gatewayServer is a trustless gateway over a set of blocks, on loopback.
// Its handler may be replaced to inject faults.
type gatewayServer struct {
	*httptest.Server
	mu       sync.Mutex
	blocks   map[string][]byte // by CID string
	override func(w http.ResponseWriter, r *http.Request) bool
	requests []string // "METHOD path?query accept"
}

func newGatewayServer(t *testing.T, blks ...block.Block) *gatewayServer {
	g := &gatewayServer{blocks: map[string][]byte{}}
	for _, b := range blks {
		g.blocks[b.CID.String()] = b.Data
	}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

func (g *gatewayServer) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Accept"))
	override := g.override
	g.mu.Unlock()
	if r.URL.Path == probePath {
		w.WriteHeader(http.StatusOK)
		return
	}
	if override != nil && override(w, r) {
		return
	}
	g.mu.Lock()
	data, ok := g.blocks[strings.TrimPrefix(r.URL.Path, "/ipfs/")]
	g.mu.Unlock()
	if !ok || r.URL.Query().Get("format") != "raw" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.ipld.raw")
	w.Write(data)
}

func (g *gatewayServer) setOverride(f func(w http.ResponseWriter, r *http.Request) bool) {
	g.mu.Lock()
	g.override = f
	g.mu.Unlock()
}

// addrInfo names the server as a gateway, the way a provider record does.
func (g *gatewayServer) addrInfo(t *testing.T) peer.AddrInfo {
	t.Helper()
	return peer.AddrInfo{ID: peer.ID("gateway-under-test"), Addrs: []ma.Multiaddr{routingtest.HTTPAddr(t, g.URL)}}
}

var rawV1 = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}

func randomBlock(t *testing.T, n int) block.Block {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	b, err := block.New(rawV1, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// connect starts a Network on cfg and connects it to g.
func connect(t *testing.T, g *gatewayServer, cfg Config) (*Network, *inbox) {
	t.Helper()
	r := newInbox()
	n := New(cfg, r)
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := n.Connect(ctx, g.addrInfo(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.ups:
	default:
		t.Fatal("Connect succeeded without telling the receiver")
	}
	return n, r
}

func want(c cid.Cid, t wantlist.WantType) *message.Message {
	return &message.Message{Wants: []message.Entry{{CID: c, WantType: t, SendDontHave: true}}}
}

// TestHaveAndGet: a want-have is a HEAD answered HAVE or DONT_HAVE, a
// want-block a GET for the raw block, with the trustless headers.
func TestHaveAndGet(t *testing.T) {
	b := randomBlock(t, 100_000)
	absent := randomBlock(t, 10)
	g := newGatewayServer(t, b)
	n, r := connect(t, g, Config{})
	p := g.addrInfo(t).ID
	ctx := context.Background()

	if err := n.SendMessage(ctx, p, want(b.CID, wantlist.WantHave)); err != nil {
		t.Fatal(err)
	}
	if m := r.next(t); len(m.Presences) != 1 || m.Presences[0].Type != message.Have || !m.Presences[0].CID.Equals(b.CID) {
		t.Fatalf("want-have answered %+v, want HAVE", m)
	}
	if err := n.SendMessage(ctx, p, want(absent.CID, wantlist.WantHave)); err != nil {
		t.Fatal(err)
	}
	if m := r.next(t); len(m.Presences) != 1 || m.Presences[0].Type != message.DontHave {
		t.Fatalf("want-have of a missing block answered %+v, want DONT_HAVE", m)
	}
	if err := n.SendMessage(ctx, p, want(b.CID, wantlist.WantBlock)); err != nil {
		t.Fatal(err)
	}
	m := r.next(t)
	if len(m.Blocks) != 1 || !m.Blocks[0].CID.Equals(b.CID) || !bytes.Equal(m.Blocks[0].Data, b.Data) || !m.Blocks[0].Checked() {
		t.Fatalf("want-block answered %+v, want the verified block", m)
	}
	g.mu.Lock()
	reqs := strings.Join(g.requests, "\n")
	g.mu.Unlock()
	wantReqs := "HEAD /ipfs/bafkqaaa application/vnd.ipld.raw\n" +
		"HEAD /ipfs/" + b.CID.String() + "?format=raw application/vnd.ipld.raw\n" +
		"HEAD /ipfs/" + absent.CID.String() + "?format=raw application/vnd.ipld.raw\n" +
		"GET /ipfs/" + b.CID.String() + "?format=raw application/vnd.ipld.raw"
	if reqs != wantReqs {
		t.Fatalf("requests:\n%s\nwant:\n%s", reqs, wantReqs)
	}
	if s := n.Stats(); s.Requests != 4 || s.Failures != 0 || len(s.Gateways) != 1 || s.Gateways[0].URL != g.URL {
		t.Fatalf("stats %+v", s)
	}
}

// TestWrongBytes: a block whose bytes do not hash to its CID is not handed
// on; the gateway is dropped at once and avoided until its backoff ends.
func TestWrongBytes(t *testing.T) {
	b := randomBlock(t, 1000)
	g := newGatewayServer(t, b)
	g.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		w.Write(bytes.Repeat([]byte{'x'}, 1000))
		return true
	})
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	n, r := connect(t, g, Config{now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	ai := g.addrInfo(t)
	if err := n.SendMessage(context.Background(), ai.ID, want(b.CID, wantlist.WantBlock)); err != nil {
		t.Fatal(err)
	}
	if m := r.next(t); len(m.Blocks) != 0 || len(m.Presences) != 1 || m.Presences[0].Type != message.DontHave {
		t.Fatalf("a forged block answered %+v, want DONT_HAVE and no block", m)
	}
	r.dropped(t)
	if s := n.Stats(); s.InvalidBlocks != 1 || s.Dropped != 1 || len(s.Gateways) != 0 {
		t.Fatalf("stats %+v", s)
	}
	if err := n.SendMessage(context.Background(), ai.ID, want(b.CID, wantlist.WantBlock)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send to a dropped gateway: %v", err)
	}
	if n.Usable(ai) {
		t.Fatal("a dropped gateway is usable at once")
	}
	if err := n.Connect(context.Background(), ai); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("connect to a backing-off gateway: %v", err)
	}
	mu.Lock()
	now = now.Add(DefaultBackoff + time.Second)
	mu.Unlock()
	if err := n.Connect(context.Background(), ai); err != nil {
		t.Fatalf("connect after the backoff: %v", err)
	}
}

// TestOversize: a body over MaxBlockSize is a failure, whether its length
// is announced or not, and no block is handed on.
func TestOversize(t *testing.T) {
	const max = 4096
	b := randomBlock(t, max+1) // a real block, too large for this node
	small := randomBlock(t, max)
	g := newGatewayServer(t, b, small)
	var chunked atomic.Bool
	g.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		if chunked.Load() && r.Method == http.MethodGet {
			w.(http.Flusher).Flush() // no Content-Length: the body is read up to the limit
		}
		return false
	})
	n, r := connect(t, g, Config{MaxBlockSize: max})
	p := g.addrInfo(t).ID
	for i, c := range []bool{false, true} {
		chunked.Store(c)
		if err := n.SendMessage(context.Background(), p, want(b.CID, wantlist.WantBlock)); err != nil {
			t.Fatal(err)
		}
		if m := r.next(t); len(m.Blocks) != 0 || len(m.Presences) != 1 || m.Presences[0].Type != message.DontHave {
			t.Fatalf("oversized body answered %+v", m)
		}
		// The answer goes out before the failure is counted.
		poll.UntilNil(t, 10*time.Second, func() error {
			if f := n.Stats().Failures; f != uint64(i+1) {
				return fmt.Errorf("failures %d, want %d", f, i+1)
			}
			return nil
		})
		// Cancel, so the next want is a new request.
		n.SendMessage(context.Background(), p, &message.Message{Wants: []message.Entry{{CID: b.CID, Cancel: true}}})
	}
	if err := n.SendMessage(context.Background(), p, want(small.CID, wantlist.WantBlock)); err != nil {
		t.Fatal(err)
	}
	if m := r.next(t); len(m.Blocks) != 1 || !bytes.Equal(m.Blocks[0].Data, small.Data) {
		t.Fatalf("a block of exactly MaxBlockSize answered %+v", m)
	}
}

// TestFailuresDrop: 404 is an answer, not a failure; 500s in a row drop
// the gateway, for Backoff or the longer Retry-After it asks for.
func TestFailuresDrop(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	status, retry := http.StatusNotFound, ""
	setStatus := func(s int, ra string) { mu.Lock(); status, retry = s, ra; mu.Unlock() }
	g := newGatewayServer(t)
	g.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.WriteHeader(status)
		return true
	})
	cfg := Config{MaxFailures: 3, Backoff: time.Minute, now: clock}
	n, r := connect(t, g, cfg)
	ai := g.addrInfo(t)
	ask := func() *message.Message {
		c := randomBlock(t, 10).CID
		if err := n.SendMessage(context.Background(), ai.ID, want(c, wantlist.WantBlock)); err != nil {
			t.Fatal(err)
		}
		return r.next(t)
	}
	for range 5 {
		if m := ask(); len(m.Presences) != 1 || m.Presences[0].Type != message.DontHave {
			t.Fatalf("404 answered %+v", m)
		}
	}
	if s := n.Stats(); s.Failures != 0 || len(s.Gateways) != 1 {
		t.Fatalf("after 404s: %+v", s)
	}
	setStatus(http.StatusInternalServerError, "")
	for range 3 {
		ask()
	}
	r.dropped(t)
	if err := n.Connect(context.Background(), ai); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("connect during the backoff: %v", err)
	}
	advance(time.Minute + time.Second)
	if err := n.Connect(context.Background(), ai); err != nil {
		t.Fatal(err)
	}
	<-r.ups
	// 429 with Retry-After: 300 keeps it away five minutes.
	setStatus(http.StatusTooManyRequests, "300")
	for range 3 {
		ask()
	}
	r.dropped(t)
	advance(2 * time.Minute)
	if n.Usable(ai) {
		t.Fatal("usable before its Retry-After")
	}
	advance(4 * time.Minute)
	if !n.Usable(ai) {
		t.Fatal("not usable after its Retry-After")
	}
}

// TestProbeFails: a gateway that fails its probe is not connected and is
// avoided for Backoff.
func TestProbeFails(t *testing.T) {
	g := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer g.Close()
	gs := &gatewayServer{Server: g}
	r := newInbox()
	n := New(Config{}, r)
	defer n.Close()
	ai := gs.addrInfo(t)
	err := n.Connect(context.Background(), ai)
	if err == nil || !strings.Contains(err.Error(), g.URL) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Connect = %v, want an error naming the gateway and its status", err)
	}
	if n.Connected(ai.ID) || n.Usable(ai) {
		t.Fatal("a gateway that failed its probe is connected or usable")
	}
}

// TestWorkersBound: no more than Workers requests are in flight at one
// gateway; want-blocks go before want-haves.
func TestWorkersBound(t *testing.T) {
	const workers, wants = 2, 8
	var blks []block.Block
	for range wants {
		blks = append(blks, randomBlock(t, 100))
	}
	g := newGatewayServer(t, blks...)
	var mu sync.Mutex
	inFlight, most := 0, 0
	var order []string
	entered := make(chan struct{}, wants)
	release := make(chan struct{})
	g.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		order = append(order, r.Method)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return false
	})
	n, r := connect(t, g, Config{Workers: workers})
	p := g.addrInfo(t).ID
	m := &message.Message{}
	for i, b := range blks {
		wt := wantlist.WantHave
		if i >= wants/2 {
			wt = wantlist.WantBlock
		}
		m.Wants = append(m.Wants, message.Entry{CID: b.CID, WantType: wt, SendDontHave: true})
	}
	if err := n.SendMessage(context.Background(), p, m); err != nil {
		t.Fatal(err)
	}
	// Release one request at a time once the next has come in, so the
	// order the server sees is the order the requests were taken in.
	for range workers {
		<-entered
	}
	for i := range wants {
		release <- struct{}{}
		r.next(t)
		if i < wants-workers {
			<-entered
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > workers {
		t.Fatalf("%d requests in flight at once, want at most %d", most, workers)
	}
	for i, m := range order {
		if (i < wants/2) != (m == http.MethodGet) {
			t.Fatalf("request order %v: want-blocks first", order)
		}
	}
}

// TestCancel: a cancel aborts a request in flight (the server sees its
// context end), nothing is answered, and once closed the Network leaves
// no goroutine behind.
func TestCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := randomBlock(t, 100)
	gone := make(chan struct{})
	entered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == probePath {
			return
		}
		close(entered)
		<-r.Context().Done()
		close(gone)
	}))
	g := &gatewayServer{Server: srv}
	r := newInbox()
	n := New(Config{}, r)
	ai := g.addrInfo(t)
	if err := n.Connect(context.Background(), ai); err != nil {
		t.Fatal(err)
	}
	if err := n.SendMessage(context.Background(), ai.ID, want(b.CID, wantlist.WantBlock)); err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := n.SendMessage(context.Background(), ai.ID, &message.Message{Wants: []message.Entry{{CID: b.CID, Cancel: true}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone:
	case <-time.After(wait):
		t.Fatal("the cancelled request went on")
	}
	n.Close()
	srv.Close()
	select {
	case m := <-r.msgs:
		t.Fatalf("a cancelled request was answered: %+v", m)
	default:
	}
	if s := n.Stats(); s.Failures != 0 {
		t.Fatalf("a cancel counted as a failure: %+v", s)
	}
}
