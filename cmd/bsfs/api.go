package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
)

// The daemon's local API is HTTP over the repository's unix socket. Every
// endpoint takes its argument as the query parameter arg; block/put takes
// the block as the request body and the CID prefix as query parameters.
// Errors are a non-2xx status with a one-line text body.
const (
	pathID          = "/v0/id"
	pathBlockPut    = "/v0/block/put"
	pathBlockGet    = "/v0/block/get"
	pathBlockStat   = "/v0/block/stat"
	pathBlockRm     = "/v0/block/rm"
	pathSwarmConn   = "/v0/swarm/connect"
	pathSwarmPeers  = "/v0/swarm/peers"
	pathWantlist    = "/v0/bitswap/wantlist"
	pathBlocksGet   = "/v0/blocks/get"
	pathBlocksPut   = "/v0/blocks/put"
	pathRoots       = "/v0/roots"
	pathRootsAdd    = "/v0/roots/add"
	apiProbeTimeout = 2 * time.Second
	// maxBlocksGet bounds the CIDs of one blocks/get request.
	maxBlocksGet = 4096
)

// blocks/get takes CIDs, one a line, as its body and answers with a stream
// of frames, one a block as it arrives; blocks/put takes such a stream and
// answers with the count of blocks stored. A frame is the uvarint length of
// the binary CID, the CID, the uvarint length of the data, the data.

// newAPIHandler serves n on the local API.
func newAPIHandler(n node) http.Handler {
	mux := http.NewServeMux()
	registerStatsAPI(mux, n)
	registerPinAPI(mux, n)
	registerUsageAPI(mux, n)
	registerRoutingAPI(mux, n)
	mux.HandleFunc("GET "+pathID, func(w http.ResponseWriter, r *http.Request) {
		id, err := n.Identity(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, id)
	})
	mux.HandleFunc("POST "+pathBlockPut, func(w http.ResponseWriter, r *http.Request) {
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
		c, err := n.PutBlock(r.Context(), prefix, data)
		if err != nil {
			writeError(w, err)
			return
		}
		io.WriteString(w, c.String())
	})
	mux.HandleFunc("GET "+pathBlockGet, func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		// The request's context ends when the client goes away, which
		// cancels the want.
		data, err := n.GetBlock(r.Context(), c)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	})
	mux.HandleFunc("GET "+pathBlockStat, func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		size, err := n.BlockSize(r.Context(), c)
		if err != nil {
			writeError(w, err)
			return
		}
		io.WriteString(w, strconv.Itoa(size))
	})
	mux.HandleFunc("POST "+pathBlockRm, func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		if err := n.RemoveBlock(r.Context(), c); err != nil {
			writeError(w, err)
		}
	})
	mux.HandleFunc("POST "+pathSwarmConn, func(w http.ResponseWriter, r *http.Request) {
		addr, err := ma.NewMultiaddr(r.URL.Query().Get("arg"))
		if err != nil {
			writeError(w, badRequest(err))
			return
		}
		id, err := n.Connect(r.Context(), addr)
		if err != nil {
			writeError(w, err)
			return
		}
		io.WriteString(w, id.String())
	})
	mux.HandleFunc("GET "+pathSwarmPeers, func(w http.ResponseWriter, r *http.Request) {
		peers, err := n.Peers(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, peers)
	})
	mux.HandleFunc("POST "+pathBlocksGet, func(w http.ResponseWriter, r *http.Request) {
		cids, err := readCIDList(http.MaxBytesReader(w, r.Body, maxBlocksGet*(2*block.MaxCIDSize+2)))
		if err != nil {
			writeError(w, badRequest(err))
			return
		}
		// The request's context ends when the client goes away or the
		// handler returns, which cancels the wants.
		var g interface {
			GetBlocks(context.Context, []cid.Cid) (*block.Stream, error)
		} = n
		if id := r.URL.Query().Get("session"); id != "" {
			if sn, ok := n.(sessionServer); ok {
				var done func()
				g, done = sn.apiSession(id)
				defer done()
			}
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
	})
	mux.HandleFunc("POST "+pathBlocksPut, func(w http.ResponseWriter, r *http.Request) {
		bw, err := n.BlockWriter(r.Context())
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
	})
	mux.HandleFunc("POST "+pathRootsAdd, func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		if err := n.AddRoot(r.Context(), c); err != nil {
			writeError(w, err)
		}
	})
	mux.HandleFunc("GET "+pathRoots, func(w http.ResponseWriter, r *http.Request) {
		roots, err := n.Roots(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, cidStrings(roots))
	})
	mux.HandleFunc("GET "+pathWantlist, func(w http.ResponseWriter, r *http.Request) {
		wants, err := n.Wantlist(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, cidStrings(wants))
	})
	return mux
}

func cidStrings(cids []cid.Cid) []string {
	out := make([]string, len(cids))
	for i, c := range cids {
		out[i] = c.String()
	}
	return out
}

// readCIDList reads CIDs, one a line, at most maxBlocksGet of them.
func readCIDList(r io.Reader) ([]cid.Cid, error) {
	var out []cid.Cid
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if len(out) == maxBlocksGet {
			return nil, fmt.Errorf("more than %d CIDs", maxBlocksGet)
		}
		c, err := cid.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("invalid CID %q: %w", line, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// writeFrame writes b as one frame.
func writeFrame(w io.Writer, b block.Block) error {
	hdr := binary.AppendUvarint(nil, uint64(b.CID.ByteLen()))
	hdr = append(hdr, b.CID.Bytes()...)
	hdr = binary.AppendUvarint(hdr, uint64(len(b.Data)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(b.Data)
	return err
}

// readFrame reads one frame and checks the data against the CID. A stream
// that ends between frames is io.EOF.
func readFrame(r *bufio.Reader) (block.Block, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return block.Block{}, io.EOF
		}
		return block.Block{}, fmt.Errorf("block frame: %w", err)
	}
	if n == 0 || n > block.MaxCIDSize {
		return block.Block{}, fmt.Errorf("block frame: CID of %d bytes", n)
	}
	cb := make([]byte, n)
	if _, err := io.ReadFull(r, cb); err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", io.ErrUnexpectedEOF)
	}
	c, err := cid.Cast(cb)
	if err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", err)
	}
	m, err := binary.ReadUvarint(r)
	if err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", io.ErrUnexpectedEOF)
	}
	if m > block.MaxSize {
		return block.Block{}, fmt.Errorf("%w: frame of %d bytes", block.ErrTooLarge, m)
	}
	data := make([]byte, m)
	if _, err := io.ReadFull(r, data); err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", io.ErrUnexpectedEOF)
	}
	return block.Verified(c, data)
}

// errBadRequest marks errors in what the client sent.
var errBadRequest = errors.New("bad request")

func badRequest(err error) error { return fmt.Errorf("%w: %w", errBadRequest, err) }

func cidArg(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	c, err := cid.Decode(r.URL.Query().Get("arg"))
	if err != nil {
		writeError(w, badRequest(fmt.Errorf("invalid CID: %w", err)))
		return cid.Undef, false
	}
	return c, true
}

// prefixFromQuery reads the CID prefix block/put hashes with.
func prefixFromQuery(r *http.Request) (cid.Prefix, error) {
	q := r.URL.Query()
	var vals [4]uint64
	for i, name := range []string{"version", "codec", "mhtype", "mhlen"} {
		v, err := strconv.ParseInt(q.Get(name), 10, 64)
		if err != nil {
			return cid.Prefix{}, fmt.Errorf("query parameter %s: %w", name, err)
		}
		vals[i] = uint64(v)
	}
	return cid.Prefix{Version: vals[0], Codec: vals[1], MhType: vals[2], MhLength: int(int64(vals[3]))}, nil
}

func prefixQuery(p cid.Prefix) string {
	return fmt.Sprintf("version=%d&codec=%d&mhtype=%d&mhlen=%d", p.Version, p.Codec, p.MhType, p.MhLength)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeError answers with err's status and err's message on one line.
func writeError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(errorStatus(err))
	io.WriteString(w, oneLine(err.Error())+"\n")
}

// errorStatus is the HTTP status that tells err.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, block.ErrUnsupportedCID), errors.Is(err, block.ErrCIDTooLong):
		return http.StatusBadRequest
	case errors.Is(err, block.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, block.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errNoDaemon), errors.Is(err, exchange.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// errorTrailer is the trailer of a blocks/get answer that stopped short:
// the status and message an error answer would have, "404 get block ...".
const errorTrailer = "Bsfs-Error"

// trailerError is the error h's errorTrailer tells, nil if none.
func trailerError(h http.Header) error {
	v := h.Get(errorTrailer)
	if v == "" {
		return nil
	}
	code, msg, _ := strings.Cut(v, " ")
	status, err := strconv.Atoi(code)
	if err != nil {
		return fmt.Errorf("daemon API: %s trailer %q", errorTrailer, v)
	}
	return &apiError{status: status, msg: msg}
}

// apiError is an error answer of the daemon.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// Unwrap maps the status back to the errors commands test for.
func (e *apiError) Unwrap() error {
	switch e.status {
	case http.StatusNotFound:
		return block.ErrNotFound
	case http.StatusGatewayTimeout:
		return context.DeadlineExceeded
	case http.StatusRequestEntityTooLarge:
		return block.ErrTooLarge
	}
	return nil
}

// apiClient is a running daemon, reached through its API socket.
type apiClient struct {
	http *http.Client
}

var _ node = (*apiClient)(nil)

func newAPIClient(socket string) *apiClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &apiClient{http: &http.Client{Transport: tr}}
}

// open sends a request and returns a 2xx answer, whose body the caller
// closes; other answers become an *apiError.
func (c *apiClient) open(ctx context.Context, method, path, query string, body io.Reader) (*http.Response, error) {
	target := "http://bsfs" + path
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("daemon API: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(data))
		if msg == "" {
			msg = resp.Status
		}
		return nil, &apiError{status: resp.StatusCode, msg: msg}
	}
	return resp, nil
}

// do sends a request and returns the body of a 2xx answer; other answers
// become an *apiError.
func (c *apiClient) do(ctx context.Context, method, path, query string, body io.Reader) ([]byte, error) {
	resp, err := c.open(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, block.MaxSize+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("daemon API: %w", err)
	}
	return data, nil
}

// getJSON gets path, which may carry a query after "?", and decodes the
// JSON answer into v.
func (c *apiClient) getJSON(ctx context.Context, path string, v any) error {
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	data, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	return nil
}

func argQuery(s string) string { return "arg=" + url.QueryEscape(s) }

func (c *apiClient) Identity(ctx context.Context) (identity, error) {
	var id identity
	err := c.getJSON(ctx, pathID, &id)
	return id, err
}

func (c *apiClient) PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error) {
	out, err := c.do(ctx, http.MethodPost, pathBlockPut, prefixQuery(prefix), bytes.NewReader(data))
	if err != nil {
		return cid.Undef, err
	}
	return cid.Decode(string(out))
}

func (c *apiClient) GetBlock(ctx context.Context, k cid.Cid) ([]byte, error) {
	return c.do(ctx, http.MethodGet, pathBlockGet, argQuery(k.String()), nil)
}

func (c *apiClient) BlockSize(ctx context.Context, k cid.Cid) (int, error) {
	out, err := c.do(ctx, http.MethodGet, pathBlockStat, argQuery(k.String()), nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(out))
}

func (c *apiClient) RemoveBlock(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathBlockRm, argQuery(k.String()), nil)
	return err
}

func (c *apiClient) Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	out, err := c.do(ctx, http.MethodPost, pathSwarmConn, argQuery(addr.String()), nil)
	if err != nil {
		return "", err
	}
	return peer.Decode(string(out))
}

func (c *apiClient) Peers(ctx context.Context) ([]string, error) {
	var peers []string
	err := c.getJSON(ctx, pathSwarmPeers, &peers)
	return peers, err
}

func (c *apiClient) Wantlist(ctx context.Context) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathWantlist)
}

// getCIDs gets a JSON list of CIDs.
func (c *apiClient) getCIDs(ctx context.Context, path string) ([]cid.Cid, error) {
	var strs []string
	if err := c.getJSON(ctx, path, &strs); err != nil {
		return nil, err
	}
	out := make([]cid.Cid, 0, len(strs))
	for _, s := range strs {
		k, err := cid.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("daemon API %s: %w", path, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// GetBlocks streams the blocks from the daemon, which fetches them from
// its peers; each is checked against its CID. The stream ends, and the
// daemon's wants are cancelled, when ctx does; one the daemon ends short
// says why as GetBlock would.
func (c *apiClient) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	return c.getBlocks(ctx, cids, "")
}

// getBlocks is GetBlocks within the daemon's session named session ("" for
// a session of the call's own).
func (c *apiClient) getBlocks(ctx context.Context, cids []cid.Cid, session string) (*block.Stream, error) {
	var body strings.Builder
	want := make(map[string]bool, len(cids))
	for _, k := range cids {
		if err := block.CheckCID(k); err != nil {
			return nil, err
		}
		want[k.KeyString()] = true
		body.WriteString(k.String() + "\n")
	}
	if len(cids) > maxBlocksGet {
		return nil, fmt.Errorf("get blocks: %d CIDs, at most %d a call", len(cids), maxBlocksGet)
	}
	query := ""
	if session != "" {
		query = "session=" + url.QueryEscape(session)
	}
	resp, err := c.open(ctx, http.MethodPost, pathBlocksGet, query, strings.NewReader(body.String()))
	if err != nil {
		return nil, err
	}
	st := block.NewStream()
	go func() {
		defer resp.Body.Close()
		br := bufio.NewReaderSize(resp.Body, 256<<10)
		for {
			b, err := readFrame(br)
			if err == nil && !want[b.CID.KeyString()] {
				err = fmt.Errorf("block frame: %s not asked for", b.CID)
			}
			if err == nil && st.Send(b, ctx.Done()) {
				delete(want, b.CID.KeyString())
				continue
			}
			st.Close(streamError(ctx, cids, want, resp.Trailer, err))
			return
		}
	}()
	return st, nil
}

// streamError is why a stream from the daemon stopped on err (io.EOF: the
// daemon ended it) with the blocks of cids still in want not delivered:
// nil if none is, ctx's end, a broken stream, or what the daemon said.
func streamError(ctx context.Context, cids []cid.Cid, want map[string]bool, trailer http.Header, err error) error {
	for _, k := range cids {
		switch {
		case !want[k.KeyString()]:
			continue
		case ctx.Err() != nil:
			return fmt.Errorf("get block %s: %w", k, ctx.Err())
		case !errors.Is(err, io.EOF):
			return fmt.Errorf("daemon API: %w", err)
		}
		return trailerError(trailer)
	}
	return nil
}

// BlockWriter streams blocks to the daemon in one request, which stores
// them and tells its peers.
func (c *apiClient) BlockWriter(ctx context.Context) (blockWriter, error) {
	pr, pw := io.Pipe()
	w := &apiWriter{pw: pw, bw: bufio.NewWriterSize(pw, 1<<20), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_, w.err = c.do(ctx, http.MethodPost, pathBlocksPut, "", pr)
		pr.CloseWithError(errors.New("daemon API: upload ended"))
	}()
	return w, nil
}

type apiWriter struct {
	pw   *io.PipeWriter
	bw   *bufio.Writer
	done chan struct{} // closed when the request has ended
	err  error         // the request's, set before done is closed
}

func (w *apiWriter) Put(_ context.Context, b block.Block) error {
	if err := writeFrame(w.bw, b); err != nil {
		w.pw.Close()
		<-w.done
		if w.err != nil {
			return w.err
		}
		return err
	}
	return nil
}

func (w *apiWriter) Close() error {
	ferr := w.bw.Flush()
	w.pw.Close()
	<-w.done
	if w.err != nil {
		return w.err
	}
	return ferr
}

func (c *apiClient) AddRoot(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathRootsAdd, argQuery(k.String()), nil)
	return err
}

func (c *apiClient) Roots(ctx context.Context) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathRoots)
}

func (c *apiClient) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// probe reports whether a daemon answers on the socket.
func (c *apiClient) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, apiProbeTimeout)
	defer cancel()
	_, err := c.Identity(ctx)
	return err == nil
}
