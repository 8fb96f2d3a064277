package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/unixfs"
)

// shutdownTimeout bounds waiting for requests in flight at shutdown.
const shutdownTimeout = 5 * time.Second

// Backend is the node a Server serves: each method answers one endpoint.
type Backend interface {
	Identity(ctx context.Context) (Identity, error)
	PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error)
	GetBlock(ctx context.Context, c cid.Cid) (block.Block, error)
	BlockSize(ctx context.Context, c cid.Cid) (int, error)
	RemoveBlock(ctx context.Context, c cid.Cid) error
	Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error)
	Peers(ctx context.Context) ([]string, error)
	Wantlist(ctx context.Context) ([]cid.Cid, error)
	GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error)
	BlockWriter(ctx context.Context) (BlockWriter, error)
	AddRoot(ctx context.Context, c cid.Cid) error
	Roots(ctx context.Context) ([]cid.Cid, error)
	FindProviders(ctx context.Context, c cid.Cid, max int, found func(peer.ID) error) error
	Provide(ctx context.Context, c cid.Cid) error
	Stat(ctx context.Context) (exchange.Stats, error)
	Ledger(ctx context.Context, p peer.ID) (decision.LedgerStat, error)
	PeerWantlist(ctx context.Context, p peer.ID) ([]cid.Cid, error)
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
	Pins(ctx context.Context) ([]cid.Cid, error)
	GC(ctx context.Context) (cache.GCResult, error)
	CacheUsage(ctx context.Context) (cache.Usage, error)
	// ResolveName resolves an IPNS name or DNSLink domain.
	ResolveName(ctx context.Context, name string) (names.Resolved, error)
	// PublishName signs and publishes an IPNS record.
	PublishName(ctx context.Context, opts PublishOptions) (Published, error)
	// NewSession returns a getter whose fetches share one session until
	// ctx ends: what a client's named session reads through.
	NewSession(ctx context.Context) unixfs.BlockGetter
}

// Server answers the API's requests from a Backend, and keeps the
// sessions its clients name.
type Server struct {
	b        Backend
	sessions sessions
	mux      *http.ServeMux
}

// NewServer returns a server of b.
func NewServer(b Backend) *Server {
	s := &Server{b: b, mux: http.NewServeMux()}
	for pattern, h := range map[string]http.HandlerFunc{
		"GET " + pathID:           s.id,
		"POST " + pathBlockPut:    s.blockPut,
		"GET " + pathBlockGet:     s.blockGet,
		"GET " + pathBlockStat:    s.blockStat,
		"POST " + pathBlockRm:     s.blockRm,
		"POST " + pathSwarmConn:   s.swarmConnect,
		"GET " + pathSwarmPeers:   s.swarmPeers,
		"GET " + pathWantlist:     s.wantlist,
		"POST " + pathBlocksGet:   s.blocksGet,
		"POST " + pathBlocksPut:   s.blocksPut,
		"GET " + pathRoots:        s.roots,
		"POST " + pathRootsAdd:    s.rootsAdd,
		"GET " + pathStat:         s.stat,
		"GET " + pathLedger:       s.ledger,
		"GET " + pathPeerWantlist: s.peerWantlist,
		"POST " + pathPinAdd:      s.pinAdd,
		"POST " + pathPinRm:       s.pinRm,
		"GET " + pathPinLs:        s.pinLs,
		"POST " + pathGC:          s.gc,
		"GET " + pathCacheUsage:   s.cacheUsage,
		"GET " + pathFindProvs:    s.findProvs,
		"POST " + pathProvide:     s.provide,
		"GET " + pathNameResolve:  s.nameResolve,
		"POST " + pathNamePublish: s.namePublish,
	} {
		s.mux.HandleFunc(pattern, h)
	}
	return s
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close ends every session clients named.
func (s *Server) Close() { s.sessions.closeAll() }

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	id, err := s.b.Identity(r.Context())
	answerJSON(w, id, err)
}

func (s *Server) blockPut(w http.ResponseWriter, r *http.Request) {
	prefix, err := prefixFromQuery(r)
	if err != nil {
		writeError(w, badRequest(err))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, block.MaxSize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			err = fmt.Errorf("%w: over %d bytes", block.ErrTooLarge, block.MaxSize)
		}
		writeError(w, err)
		return
	}
	c, err := s.b.PutBlock(r.Context(), prefix, data)
	if err != nil {
		writeError(w, err)
		return
	}
	io.WriteString(w, c.String())
}

func (s *Server) blockGet(w http.ResponseWriter, r *http.Request) {
	c, ok := cidArg(w, r)
	if !ok {
		return
	}
	// The request's context ends when the client goes away, which cancels
	// the want.
	b, err := s.b.GetBlock(r.Context(), c)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b.Data)))
	w.Write(b.Data)
}

func (s *Server) blockStat(w http.ResponseWriter, r *http.Request) {
	c, ok := cidArg(w, r)
	if !ok {
		return
	}
	size, err := s.b.BlockSize(r.Context(), c)
	if err != nil {
		writeError(w, err)
		return
	}
	io.WriteString(w, strconv.Itoa(size))
}

func (s *Server) blockRm(w http.ResponseWriter, r *http.Request) {
	s.withCID(w, r, s.b.RemoveBlock)
}

func (s *Server) swarmConnect(w http.ResponseWriter, r *http.Request) {
	addr, err := ma.NewMultiaddr(r.URL.Query().Get("arg"))
	if err != nil {
		writeError(w, badRequest(err))
		return
	}
	id, err := s.b.Connect(r.Context(), addr)
	if err != nil {
		writeError(w, err)
		return
	}
	io.WriteString(w, id.String())
}

func (s *Server) swarmPeers(w http.ResponseWriter, r *http.Request) {
	peers, err := s.b.Peers(r.Context())
	answerJSON(w, peers, err)
}

func (s *Server) wantlist(w http.ResponseWriter, r *http.Request) {
	wants, err := s.b.Wantlist(r.Context())
	answerJSON(w, cidStrings(wants), err)
}

// blocksGet streams the blocks asked for as they arrive, fetched within
// the session the query names, if any.
func (s *Server) blocksGet(w http.ResponseWriter, r *http.Request) {
	cids, err := readCIDList(http.MaxBytesReader(w, r.Body, maxBlocksGet*(2*block.MaxCIDSize+2)))
	if err != nil {
		writeError(w, badRequest(err))
		return
	}
	// The request's context ends when the client goes away or the handler
	// returns, which cancels the wants.
	var g unixfs.BlockGetter = s.b
	if id := r.URL.Query().Get("session"); id != "" {
		var done func()
		g, done = s.sessions.get(id, s.b.NewSession)
		defer done()
	}
	st, err := g.GetBlocks(r.Context(), cids)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	rc := http.NewResponseController(w)
	for b := range st.C() {
		if err := writeFrame(w, b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if err := st.Err(); err != nil {
		// Why the stream stopped short, as GetBlock's answer says it.
		w.Header().Set(http.TrailerPrefix+errorTrailer, strconv.Itoa(errorStatus(err))+" "+oneLine(err.Error()))
	}
}

// blocksPut stores the stream of blocks in the body and answers with their
// count.
func (s *Server) blocksPut(w http.ResponseWriter, r *http.Request) {
	bw, err := s.b.BlockWriter(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	br := bufio.NewReaderSize(r.Body, 1<<20)
	count := 0
	for {
		b, err := readFrame(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			b, err = block.Verified(b.CID, b.Data) // a client's bytes
		}
		if err == nil {
			err = bw.Put(r.Context(), b)
		} else {
			err = badRequest(err)
		}
		if err != nil {
			writeError(w, errors.Join(err, bw.Close()))
			return
		}
		count++
	}
	if err := bw.Close(); err != nil {
		writeError(w, err)
		return
	}
	io.WriteString(w, strconv.Itoa(count))
}

func (s *Server) roots(w http.ResponseWriter, r *http.Request) {
	roots, err := s.b.Roots(r.Context())
	answerJSON(w, cidStrings(roots), err)
}

func (s *Server) rootsAdd(w http.ResponseWriter, r *http.Request) {
	s.withCID(w, r, s.b.AddRoot)
}

func (s *Server) stat(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Stat(r.Context())
	answerJSON(w, st, err)
}

func (s *Server) ledger(w http.ResponseWriter, r *http.Request) {
	p, ok := peerArg(w, r)
	if !ok {
		return
	}
	l, err := s.b.Ledger(r.Context(), p)
	answerJSON(w, l, err)
}

func (s *Server) peerWantlist(w http.ResponseWriter, r *http.Request) {
	p, ok := peerArg(w, r)
	if !ok {
		return
	}
	cs, err := s.b.PeerWantlist(r.Context(), p)
	answerJSON(w, cidStrings(cs), err)
}

func (s *Server) pinAdd(w http.ResponseWriter, r *http.Request) { s.withCID(w, r, s.b.Pin) }

func (s *Server) pinRm(w http.ResponseWriter, r *http.Request) { s.withCID(w, r, s.b.Unpin) }

func (s *Server) pinLs(w http.ResponseWriter, r *http.Request) {
	pins, err := s.b.Pins(r.Context())
	answerJSON(w, cidStrings(pins), err)
}

func (s *Server) gc(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.GC(r.Context())
	answerJSON(w, res, err)
}

func (s *Server) cacheUsage(w http.ResponseWriter, r *http.Request) {
	u, err := s.b.CacheUsage(r.Context())
	answerJSON(w, u, err)
}

// findProvs writes each provider as the lookup finds it.
func (s *Server) findProvs(w http.ResponseWriter, r *http.Request) {
	c, ok := cidArg(w, r)
	if !ok {
		return
	}
	num, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || num < 1 {
		writeError(w, badRequest(fmt.Errorf("query parameter n: want a count of at least 1, got %q", r.URL.Query().Get("n"))))
		return
	}
	rc := http.NewResponseController(w)
	started := false
	// The request's context ends when the client goes away, which ends the
	// lookup.
	err = s.b.FindProviders(r.Context(), c, num, func(p peer.ID) error {
		if !started {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			started = true
		}
		if _, err := fmt.Fprintln(w, p); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && !started {
		writeError(w, err)
	}
}

func (s *Server) nameResolve(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.ResolveName(r.Context(), r.URL.Query().Get("arg"))
	answerJSON(w, res, err)
}

func (s *Server) namePublish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := PublishOptions{Value: q.Get("arg"), Key: q.Get("key")}
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{{"lifetime", &opts.Lifetime}, {"ttl", &opts.TTL}} {
		if v := q.Get(d.key); v != "" {
			var err error
			if *d.to, err = time.ParseDuration(v); err != nil {
				writeError(w, badRequest(fmt.Errorf("query parameter %s: %w", d.key, err)))
				return
			}
		}
	}
	res, err := s.b.PublishName(r.Context(), opts)
	answerJSON(w, res, err)
}

func (s *Server) provide(w http.ResponseWriter, r *http.Request) { s.withCID(w, r, s.b.Provide) }

// withCID answers a request whose argument is a CID with op's error.
func (s *Server) withCID(w http.ResponseWriter, r *http.Request, op func(context.Context, cid.Cid) error) {
	c, ok := cidArg(w, r)
	if !ok {
		return
	}
	if err := op(r.Context(), c); err != nil {
		writeError(w, err)
	}
}

// Listener is a Server being served on a socket.
type Listener struct {
	// Socket is the socket's path.
	Socket string
	srv    *Server
	http   *http.Server
	// served is the serving's end, if it ends on its own; done is closed
	// once the serving goroutine has returned.
	served         chan error
	done           chan struct{}
	cancelRequests context.CancelFunc
}

// Serve serves b's API on the unix socket sock until Close, replacing a
// stale socket file; the caller holds the repository, so nobody else
// serves there. Requests in flight are cancelled at Close, so that their
// fetches end; they have ctx's values.
func Serve(ctx context.Context, sock string, b Backend) (*Listener, error) {
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing stale API socket: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	// The API has no authentication: only the repository's owner may use it.
	if err := os.Chmod(sock, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("API socket: %w", err), ln.Close())
	}
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	l := &Listener{
		Socket: sock,
		srv:    NewServer(b),
		served: make(chan error, 1),
		done:   make(chan struct{}),
	}
	l.cancelRequests = cancelRequests
	l.http = &http.Server{
		Handler:           l.srv,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	go func() {
		defer close(l.done)
		l.served <- l.http.Serve(ln)
	}()
	return l, nil
}

// Served delivers the serving's error if it ends before Close.
func (l *Listener) Served() <-chan error { return l.served }

// Close stops serving, ends the sessions and removes the socket.
func (l *Listener) Close() error {
	l.cancelRequests()
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := l.http.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("API shutdown: %w", err), l.http.Close())
	}
	<-l.done
	l.srv.Close()
	if err := os.Remove(l.Socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
