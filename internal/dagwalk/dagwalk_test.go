package dagwalk_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/dagwalk"
	"github.com/bsfs/bsfs/internal/storetest"
	"github.com/bsfs/bsfs/internal/treetest"
	"github.com/bsfs/bsfs/unixfs"
)

// walk returns the edges of a walk of root as "name>to" strings.
func walk(t *testing.T, w *dagwalk.Walker, root cid.Cid) ([]string, int, error) {
	t.Helper()
	var out []string
	size, err := w.Walk(t.Context(), root, func(e dagwalk.Edge) error {
		out = append(out, e.Name+">"+e.To.String())
		return nil
	})
	return out, size, err
}

func TestWalk(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	zeros := strings.Repeat("\x00", 600000) // chunks: two equal, one shorter
	dir := treetest.Tree{Files: map[string]string{"a": zeros, "b": zeros, "c/d": "delta\n"}}.Write(t)
	root, err := unixfs.AddPath(ctx, bs, dir, unixfs.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := unixfs.New(unixfs.Local(bs), unixfs.Config{})
	ents, err := r.ReadDir(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	file, sub := ents[0].CID, ents[2].CID
	chunks, err := r.List(ctx, file)
	if err != nil || len(chunks) != 3 {
		t.Fatalf("the file's chunks: %v, %v", chunks, err)
	}
	d, err := r.ReadDir(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	leaf, tail, delta := chunks[0].CID.String(), chunks[2].CID.String(), d[0].CID.String()
	f := file.String()
	// Depth first, each link before the links below it, duplicates again.
	all := []string{"a>" + f, ">" + leaf, ">" + leaf, ">" + tail, "b>" + f, ">" + leaf, ">" + leaf, ">" + tail, "c>" + sub.String(), "d>" + delta}
	for _, tc := range []struct {
		name string
		opts dagwalk.Options
		want []string
	}{
		{"all", dagwalk.Options{MaxDepth: -1}, all},
		{"unique", dagwalk.Options{MaxDepth: -1, Unique: true}, []string{"a>" + f, ">" + leaf, ">" + tail, "c>" + sub.String(), "d>" + delta}},
		{"depth 1", dagwalk.Options{MaxDepth: 1}, []string{"a>" + f, "b>" + f, "c>" + sub.String()}},
	} {
		got, size, err := walk(t, dagwalk.New(unixfs.Local(bs), tc.opts), root)
		rb, _ := bs.Get(ctx, root)
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") || size != len(rb.Data) {
			t.Errorf("%s: %v (root %d bytes), %v; want %v (%d bytes)", tc.name, got, size, err, tc.want, len(rb.Data))
		}
	}

	// A unique walker skips, in a second walk, what the first visited.
	w := dagwalk.New(unixfs.Local(bs), dagwalk.Options{MaxDepth: -1, Unique: true})
	walk(t, w, sub)
	if got, _, err := walk(t, w, file); err != nil || strings.Join(got, " ") != ">"+leaf+" >"+tail {
		t.Errorf("second walk: %v, %v", got, err)
	}
	if got, _, err := walk(t, w, file); err != nil || len(got) != 0 {
		t.Errorf("third walk: %v, %v", got, err)
	}

	// A missing block fails the walk when reached, naming it; what comes
	// before it is visited.
	if err := bs.Delete(ctx, chunks[2].CID); err != nil {
		t.Fatal(err)
	}
	got, _, err := walk(t, dagwalk.New(unixfs.Local(bs), dagwalk.Options{MaxDepth: -1}), root)
	if !errors.Is(err, block.ErrNotFound) || !strings.Contains(err.Error(), tail) || strings.Join(got, " ") != strings.Join(all[:3], " ") {
		t.Errorf("with %s missing: %v, %v", tail, got, err)
	}

	// Only dag-pb and raw blocks are walked.
	cbor, err := block.New(cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}, []byte{0xa0})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Put(ctx, cbor); err != nil {
		t.Fatal(err)
	}
	if _, _, err := walk(t, dagwalk.New(unixfs.Local(bs), dagwalk.Options{MaxDepth: -1}), cbor.CID); err == nil || !strings.Contains(err.Error(), cbor.CID.String()) {
		t.Errorf("walk of a dag-cbor block: %v", err)
	}
}
