package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/repo"
)

// Client is a running daemon, reached through its API socket.
type Client struct {
	http *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient returns a client of the daemon serving on the unix socket
// socket. It dials on each request: a daemon not running is an error of
// the request.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{http: &http.Client{Transport: tr}}
}

// open sends a request and returns a 2xx answer, whose body the caller
// closes; other answers become an *apiError.
func (c *Client) open(ctx context.Context, method, path, query string, body io.Reader) (*http.Response, error) {
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
func (c *Client) do(ctx context.Context, method, path, query string, body io.Reader) ([]byte, error) {
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
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
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

// Identity returns the daemon's peer ID, addresses and reachability.
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	var id Identity
	err := c.getJSON(ctx, pathID, &id)
	return id, err
}

// PutBlock stores data as a block with the CID prefix gives it.
func (c *Client) PutBlock(ctx context.Context, prefix cid.Prefix, data []byte) (cid.Cid, error) {
	out, err := c.do(ctx, http.MethodPost, pathBlockPut, prefixQuery(prefix), bytes.NewReader(data))
	if err != nil {
		return cid.Undef, err
	}
	return cid.Decode(string(out))
}

// GetBlock returns k's block, checked against k, which the daemon fetches
// from its peers until ctx ends.
func (c *Client) GetBlock(ctx context.Context, k cid.Cid) (block.Block, error) {
	data, err := c.do(ctx, http.MethodGet, pathBlockGet, argQuery(k.String()), nil)
	if err != nil {
		return block.Block{}, err
	}
	return block.Verified(k, data)
}

// Has reports whether the daemon stores k, without fetching it.
func (c *Client) Has(ctx context.Context, k cid.Cid) (bool, error) {
	_, err := c.BlockSize(ctx, k)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, block.ErrNotFound):
		return false, nil
	}
	return false, err
}

// BlockSize returns the size of the block the daemon stores as c.
func (c *Client) BlockSize(ctx context.Context, k cid.Cid) (int, error) {
	out, err := c.do(ctx, http.MethodGet, pathBlockStat, argQuery(k.String()), nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(out))
}

// RemoveBlock deletes the block the daemon stores as c.
func (c *Client) RemoveBlock(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathBlockRm, argQuery(k.String()), nil)
	return err
}

// Connect has the daemon dial the peer addr names.
func (c *Client) Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	out, err := c.do(ctx, http.MethodPost, pathSwarmConn, argQuery(addr.String()), nil)
	if err != nil {
		return "", err
	}
	return peer.Decode(string(out))
}

// Peers lists the daemon's open connections.
func (c *Client) Peers(ctx context.Context) ([]string, error) {
	var peers []string
	err := c.getJSON(ctx, pathSwarmPeers, &peers)
	return peers, err
}

// Wantlist returns what the daemon's exchange wants.
func (c *Client) Wantlist(ctx context.Context) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathWantlist)
}

// getCIDs gets a JSON list of CIDs.
func (c *Client) getCIDs(ctx context.Context, path string) ([]cid.Cid, error) {
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
// its peers and checks each against its CID; the client checks that each
// is one of cids. The stream ends, and the daemon's wants are cancelled,
// when ctx does; one the daemon ends short says why as GetBlock would.
func (c *Client) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	return c.getBlocks(ctx, cids, "")
}

// getBlocks is GetBlocks within the daemon's session named session ("" for
// a session of the call's own).
func (c *Client) getBlocks(ctx context.Context, cids []cid.Cid, session string) (*block.Stream, error) {
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
			// Not hashed again: the daemon checked each block against its
			// CID (its store on reading, its exchange on receiving), and
			// the socket is the user's own (mode 0600), so a frame holds
			// what the daemon checked. The Block is not marked checked: a
			// store it reached would hash it.
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
func (c *Client) BlockWriter(ctx context.Context) (BlockWriter, error) {
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

// Put writes b as a frame of the upload.
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

// Close ends the upload and returns the daemon's error, if any.
func (w *apiWriter) Close() error {
	ferr := w.bw.Flush()
	w.pw.Close()
	<-w.done
	if w.err != nil {
		return w.err
	}
	return ferr
}

// AddRoot pins c and records it among the roots.
func (c *Client) AddRoot(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathRootsAdd, argQuery(k.String()), nil)
	return err
}

// Roots lists the roots added, oldest first.
func (c *Client) Roots(ctx context.Context) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathRoots)
}

// Close closes the client's idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// probe reports whether a daemon answers on the socket.
func (c *Client) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := c.Identity(ctx)
	return err == nil
}

// Dial returns a client of the daemon serving the repository at path if
// its socket answers, and whether the socket exists.
func Dial(ctx context.Context, path string) (*Client, bool) {
	sock := repo.APISocketPath(path)
	if _, err := os.Stat(sock); err != nil {
		return nil, false
	}
	c := NewClient(sock)
	if !c.probe(ctx) {
		c.Close()
		return nil, true
	}
	return c, true
}

// Online is true: a daemon fetches from its peers.
func (c *Client) Online() bool { return true }

// Stat returns the daemon's exchange counters.
func (c *Client) Stat(ctx context.Context) (exchange.Stats, error) {
	var s exchange.Stats
	err := c.getJSON(ctx, pathStat, &s)
	return s, err
}

// Ledger returns the daemon's ledger of p.
func (c *Client) Ledger(ctx context.Context, p peer.ID) (decision.LedgerStat, error) {
	var l decision.LedgerStat
	err := c.getJSON(ctx, pathLedger+"?"+argQuery(p.String()), &l)
	return l, err
}

// PeerWantlist returns what p wants from the daemon.
func (c *Client) PeerWantlist(ctx context.Context, p peer.ID) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathPeerWantlist+"?arg="+url.QueryEscape(p.String()))
}

// Pin pins c's DAG, which the daemon fetches what is missing of.
func (c *Client) Pin(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathPinAdd, argQuery(k.String()), nil)
	return err
}

// Unpin unpins c's DAG.
func (c *Client) Unpin(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathPinRm, argQuery(k.String()), nil)
	return err
}

// Pins lists the pinned roots, oldest first.
func (c *Client) Pins(ctx context.Context) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathPinLs)
}

// GC deletes the blocks no pin keeps.
func (c *Client) GC(ctx context.Context) (cache.GCResult, error) {
	var res cache.GCResult
	data, err := c.do(ctx, http.MethodPost, pathGC, "", nil)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, fmt.Errorf("daemon API %s: %w", pathGC, err)
	}
	return res, nil
}

// FindProviders calls found with each provider of c the daemon's
// content routing finds, up to max.
func (c *Client) FindProviders(ctx context.Context, k cid.Cid, max int, found func(peer.ID) error) error {
	resp, err := c.open(ctx, http.MethodGet, pathFindProvs, argQuery(k.String())+"&n="+strconv.Itoa(max), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		p, err := peer.Decode(strings.TrimSpace(sc.Text()))
		if err != nil {
			return fmt.Errorf("daemon API %s: %w", pathFindProvs, err)
		}
		if err := found(p); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("daemon API %s: %w", pathFindProvs, err)
	}
	return nil
}

// Provide has the daemon announce c to the content routing.
func (c *Client) Provide(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathProvide, argQuery(k.String()), nil)
	return err
}

// CacheUsage returns the daemon's cache quota and use.
func (c *Client) CacheUsage(ctx context.Context) (cache.Usage, error) {
	var u cache.Usage
	err := c.getJSON(ctx, pathCacheUsage, &u)
	return u, err
}

// ResolveName has the daemon resolve an IPNS name or DNSLink domain. A name
// that does not resolve is an error wrapping names.ErrNotFound.
func (c *Client) ResolveName(ctx context.Context, name string) (names.Resolved, error) {
	var res names.Resolved
	err := c.getJSON(ctx, pathNameResolve+"?"+argQuery(name), &res)
	if errors.Is(err, block.ErrNotFound) {
		return names.Resolved{}, fmt.Errorf("%w: %v", names.ErrNotFound, err)
	}
	return res, err
}

// PublishName has the daemon sign and publish an IPNS record.
func (c *Client) PublishName(ctx context.Context, opts PublishOptions) (Published, error) {
	q := url.Values{"arg": {opts.Value}, "key": {opts.Key}}
	if opts.Lifetime > 0 {
		q.Set("lifetime", opts.Lifetime.String())
	}
	if opts.TTL > 0 {
		q.Set("ttl", opts.TTL.String())
	}
	var res Published
	data, err := c.do(ctx, http.MethodPost, pathNamePublish, q.Encode(), nil)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, fmt.Errorf("daemon API %s: %w", pathNamePublish, err)
	}
	return res, nil
}
