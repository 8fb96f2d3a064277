package kubotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// RPCError is an error answered by Kubo's RPC API.
type RPCError struct {
	Status  int    // HTTP status; 200 for an error reported in a stream trailer
	Message string // Kubo's message
}

// Error implements error.
func (e *RPCError) Error() string {
	return fmt.Sprintf("kubo rpc: %s (HTTP %d)", e.Message, e.Status)
}

// call POSTs to /api/v0/<cmd> with the query args and, when body is not
// nil, a multipart file named "file". It returns the whole answer.
func (n *Node) call(ctx context.Context, cmd string, args url.Values, body []byte) ([]byte, error) {
	var (
		reqBody     io.Reader
		contentType string
	)
	if body != nil {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile("file", "file")
		if err != nil {
			return nil, err
		}
		if _, err := fw.Write(body); err != nil {
			return nil, err
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		reqBody = &buf
		contentType = mw.FormDataContentType()
	}
	u := n.api + "/api/v0/" + cmd
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, reqBody)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errorBody(resp)
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	// Streaming commands (cat, block/get) report late errors in a trailer.
	if msg := resp.Trailer.Get("X-Stream-Error"); msg != "" {
		return nil, &RPCError{Status: resp.StatusCode, Message: msg}
	}
	return out, nil
}

// callJSON is call followed by decoding a single JSON answer into v.
func (n *Node) callJSON(ctx context.Context, cmd string, args url.Values, body []byte, v any) error {
	out, err := n.call(ctx, cmd, args, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("kubo rpc %s: decoding %q: %w", cmd, truncate(out), err)
	}
	return nil
}

// BlockPut stores data as one block and returns its CID. cidCodec and
// mhType name a multicodec and a multihash function ("raw", "sha2-256");
// "" leaves Kubo's default (raw, sha2-256, CIDv1).
func (n *Node) BlockPut(ctx context.Context, data []byte, cidCodec, mhType string) (cid.Cid, error) {
	args := url.Values{}
	if cidCodec != "" {
		args.Set("cid-codec", cidCodec)
	}
	if mhType != "" {
		args.Set("mhtype", mhType)
	}
	var res struct{ Key string }
	if err := n.callJSON(ctx, "block/put", args, nonNil(data), &res); err != nil {
		return cid.Undef, err
	}
	return cid.Decode(res.Key)
}

// BlockGet returns the block's bytes, fetching it over Bitswap from the
// connected peers when it is not local. It waits until ctx is done.
func (n *Node) BlockGet(ctx context.Context, c cid.Cid) ([]byte, error) {
	return n.call(ctx, "block/get", url.Values{"arg": {c.String()}}, nil)
}

// HasLocal reports whether the node holds the block itself. It asks with
// offline=true, so it never triggers a network request.
func (n *Node) HasLocal(ctx context.Context, c cid.Cid) (bool, error) {
	_, err := n.call(ctx, "block/stat", url.Values{"arg": {c.String()}, "offline": {"true"}}, nil)
	if err == nil {
		return true, nil
	}
	// Kubo answers a missing block with "block was not found locally
	// (offline): ipld: could not find <cid>".
	if e, ok := errors.AsType[*RPCError](err); ok && strings.Contains(e.Message, "not found") {
		return false, nil
	}
	return false, err
}

// Add imports data as a UnixFS file (`ipfs add` with 256 KiB chunks and a
// balanced DAG, Kubo's defaults) and returns the root's CID.
func (n *Node) Add(ctx context.Context, data []byte, cidVersion int, rawLeaves bool) (cid.Cid, error) {
	args := url.Values{
		"cid-version": {strconv.Itoa(cidVersion)},
		"raw-leaves":  {strconv.FormatBool(rawLeaves)},
		"quieter":     {"true"},
		"progress":    {"false"},
	}
	out, err := n.call(ctx, "add", args, nonNil(data))
	if err != nil {
		return cid.Undef, err
	}
	// The answer is one JSON object per line; the last names the root.
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			last = line
		}
	}
	var res struct{ Hash string }
	if err := json.Unmarshal([]byte(last), &res); err != nil || res.Hash == "" {
		return cid.Undef, fmt.Errorf("kubo rpc add: no root in %q (%v)", truncate(out), err)
	}
	return cid.Decode(res.Hash)
}

// Cat returns the content of the UnixFS file c, fetching missing blocks
// over Bitswap.
func (n *Node) Cat(ctx context.Context, c cid.Cid) ([]byte, error) {
	return n.call(ctx, "cat", url.Values{"arg": {c.String()}}, nil)
}

// SwarmConnect connects the node to addr, which must end in /p2p/<id>.
func (n *Node) SwarmConnect(ctx context.Context, addr multiaddr.Multiaddr) error {
	_, err := n.call(ctx, "swarm/connect", url.Values{"arg": {addr.String()}}, nil)
	return err
}

// SwarmPeers returns the peers the node is connected to.
func (n *Node) SwarmPeers(ctx context.Context) ([]peer.ID, error) {
	var res struct{ Peers []struct{ Peer string } }
	if err := n.callJSON(ctx, "swarm/peers", nil, nil, &res); err != nil {
		return nil, err
	}
	ids := make([]peer.ID, 0, len(res.Peers))
	for _, p := range res.Peers {
		id, err := peer.Decode(p.Peer)
		if err != nil {
			return nil, fmt.Errorf("kubo rpc swarm/peers: %q: %w", p.Peer, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// DHTPeers returns the peers in the routing table of one of the node's
// DHTs, "lan" or "wan" (as `ipfs stat dht` names them). The node must run
// a DHT (see Options.Routing).
func (n *Node) DHTPeers(ctx context.Context, dht string) ([]peer.ID, error) {
	out, err := n.call(ctx, "stats/dht", url.Values{"arg": {dht}}, nil)
	if err != nil {
		return nil, err
	}
	var ids []peer.ID
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var st struct {
			Buckets []struct{ Peers []struct{ ID string } }
		}
		if err := dec.Decode(&st); err != nil {
			return nil, fmt.Errorf("kubo rpc stats/dht: decoding %q: %w", truncate(out), err)
		}
		for _, b := range st.Buckets {
			for _, p := range b.Peers {
				id, err := peer.Decode(p.ID)
				if err != nil {
					return nil, fmt.Errorf("kubo rpc stats/dht: %q: %w", p.ID, err)
				}
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// nonNil makes an empty payload still travel as a (empty) file part.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// truncate shortens an answer quoted in an error.
func truncate(b []byte) []byte {
	if len(b) > 512 {
		return b[:512]
	}
	return b
}
