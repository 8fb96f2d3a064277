package api_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/node"
	"github.com/bsfs/bsfs/repo"
)

var rawPrefix = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}

// serve serves an offline node on a new repository, on its socket, and
// returns a client of it and the repository's path.
func serve(t testing.TB) (*api.Client, string) {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.ProfileTest)
	if err != nil {
		t.Fatal(err)
	}
	n := node.New(r)
	l, err := api.Serve(t.Context(), r.APISocket(), n)
	if err != nil {
		t.Fatal(errors.Join(err, n.Close()))
	}
	c := api.NewClient(r.APISocket())
	t.Cleanup(func() {
		c.Close()
		if err := errors.Join(l.Close(), n.Close()); err != nil {
			t.Error(err)
		}
	})
	return c, r.Path
}

// Blocks go through the client and the server both ways: one at a time and
// streamed in frames, in a named session and without.
func TestBlocksRoundTrip(t *testing.T) {
	c, _ := serve(t)
	ctx := t.Context()

	k, err := c.PutBlock(ctx, rawPrefix, []byte("one block"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c.GetBlock(ctx, k); err != nil || string(b.Data) != "one block" {
		t.Fatalf("get %s: %q, %v", k, b.Data, err)
	}
	if size, err := c.BlockSize(ctx, k); err != nil || size != len("one block") {
		t.Fatalf("stat %s: %d, %v", k, size, err)
	}

	w, err := c.BlockWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cids []cid.Cid
	for i := range 3 {
		b, err := block.New(rawPrefix, fmt.Appendf(nil, "streamed %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, b.CID)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]interface {
		GetBlocks(context.Context, []cid.Cid) (*block.Stream, error)
	}{"call": c, "session": c.NewSession(ctx)} {
		st, err := g.GetBlocks(ctx, cids)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for b := range st.C() {
			if !b.CID.Defined() {
				t.Fatalf("%s: a block without a CID", name)
			}
			got++
		}
		if got != len(cids) {
			t.Errorf("%s: %d blocks streamed back, want %d", name, got, len(cids))
		}
		if err := st.Err(); err != nil {
			t.Errorf("%s: a stream that delivered everything ended with %v", name, err)
		}
	}

	if err := c.RemoveBlock(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBlock(ctx, k); !errors.Is(err, block.ErrNotFound) {
		t.Errorf("get of a removed block: %v, want block.ErrNotFound", err)
	}
	if has, err := c.Has(ctx, k); has || err != nil {
		t.Errorf("has of a removed block: %v, %v", has, err)
	}
	st, err := c.GetBlocks(ctx, []cid.Cid{cids[0], k})
	if err != nil {
		t.Fatal(err)
	}
	for range st.C() {
	}
	if err := st.Err(); !errors.Is(err, block.ErrNotFound) || !strings.Contains(err.Error(), k.String()) {
		t.Errorf("stream with a removed block ended with %v, want block.ErrNotFound naming %s", err, k)
	}
}

// An error answer keeps the server's message, and its status maps back to
// the error commands test for.
func TestErrors(t *testing.T) {
	c, path := serve(t)
	ctx := t.Context()
	if _, err := c.Wantlist(ctx); err == nil || err.Error() != api.ErrNoDaemon.Error() {
		t.Errorf("wantlist offline: %v, want %q", err, api.ErrNoDaemon)
	}
	if _, err := c.PutBlock(ctx, rawPrefix, make([]byte, block.MaxSize+1)); !errors.Is(err, block.ErrTooLarge) {
		t.Errorf("put of an oversized block: %v, want block.ErrTooLarge", err)
	}
	if d, _ := api.Dial(ctx, path); d == nil {
		t.Error("Dial found no daemon answering on the repository's socket")
	} else {
		d.Close()
	}
	if _, ok := api.Dial(ctx, t.TempDir()); ok {
		t.Error("Dial found a socket in a directory without one")
	}
	if err := os.Remove(repo.APISocketPath(path)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Identity(ctx); err == nil {
		t.Error("a request to a removed socket succeeded")
	}
}
