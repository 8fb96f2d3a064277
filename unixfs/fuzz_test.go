package unixfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	pb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
)

// memStore is an in-memory Store for the fuzz targets and their seeds
// (thousands of inputs a second are more than a store on disk can take).
// Like the blockstore, it refuses CIDs bsfs cannot fetch and answers
// identity CIDs from the CID itself.
type memStore map[string]block.Block

func (m memStore) Put(_ context.Context, b block.Block) error {
	m[block.Key(b.CID)] = b
	return nil
}

func (m memStore) Get(_ context.Context, c cid.Cid) (block.Block, error) {
	if err := block.CheckCID(c); err != nil {
		return block.Block{}, err
	}
	if b, ok := block.Inline(c); ok {
		return b, nil
	}
	b, ok := m[block.Key(c)]
	if !ok {
		return block.Block{}, fmt.Errorf("%s: %w", c, block.ErrNotFound)
	}
	return b, nil
}

// FuzzDecode reads arbitrary bytes as a dag-pb block and as a raw one:
// decoding never panics and fails only with ErrMalformed; what it decodes
// is self-consistent (a file's size is its inline data plus its
// blocksizes, without overflow); Stat says the same; and a file opens,
// and reads without hanging and with the documented errors only.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > block.MaxSize {
			return // no such block is fetched or stored
		}
		for _, codec := range []uint64{cid.DagProtobuf, cid.Raw} {
			b, err := block.New(cid.Prefix{Version: 1, Codec: codec, MhType: mh.SHA2_256, MhLength: -1}, data)
			if err != nil {
				t.Fatal(err)
			}
			checkDecode(t, b)
		}
	})
}

func checkDecode(t *testing.T, b block.Block) {
	s := memStore{}
	s.Put(t.Context(), b)
	r := New(Local(s), Config{Window: 2})
	raw := b.CID.Prefix().Codec == cid.Raw
	d, err := decode(b)
	if err != nil {
		if raw || !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode %s: %v, want a file or ErrMalformed", b.CID, err)
		}
		if _, serr := r.Stat(t.Context(), b.CID); !errors.Is(serr, ErrMalformed) {
			t.Fatalf("decode: %v, but Stat: %v", err, serr)
		}
		return
	}
	n := d.node
	if !n.CID.Equals(b.CID) {
		t.Fatalf("decoded CID %s, block %s", n.CID, b.CID)
	}
	switch n.Kind {
	case KindFile:
		if len(d.sizes) != len(d.links) {
			t.Fatalf("%d links, %d blocksizes", len(d.links), len(d.sizes))
		}
		total := uint64(len(d.data))
		for _, s := range d.sizes {
			var carry uint64
			if total, carry = bits.Add64(total, s, 0); carry != 0 {
				t.Fatalf("blocksizes %v overflow, yet the file decodes", d.sizes)
			}
		}
		if n.Size != total {
			t.Fatalf("size %d, inline data and blocksizes add up to %d", n.Size, total)
		}
		if raw && !bytes.Equal(d.data, b.Data) {
			t.Fatal("a raw block's content is not its bytes")
		}
	case KindOpaque:
		if raw || n.Size != uint64(len(b.Data)) || !bytes.Equal(d.data, b.Data) {
			t.Fatalf("opaque block: size %d, content %d bytes of %d", n.Size, len(d.data), len(b.Data))
		}
	case KindSymlink:
		if n.Size != uint64(len(n.Target)) {
			t.Fatalf("symlink: size %d, target %q", n.Size, n.Target)
		}
	case KindDirectory:
		if n.Size != 0 {
			t.Fatalf("directory of size %d", n.Size)
		}
		if f := d.fanout; d.isHAMT() && (f < 8 || f > maxFanout || f&(f-1) != 0) {
			t.Fatalf("HAMT fanout %d", f)
		}
	default:
		t.Fatalf("kind %v", n.Kind)
	}
	got, err := r.Stat(t.Context(), b.CID)
	if err != nil || !got.CID.Equals(n.CID) || got.Kind != n.Kind || got.Size != n.Size || got.Mode != n.Mode ||
		!got.ModTime.Equal(n.ModTime) || got.Target != n.Target {
		t.Fatalf("Stat = %+v, %v; decoded %+v", got, err, n)
	}
	if n.Kind == KindFile || n.Kind == KindOpaque {
		checkRead(t, r, d)
	}
}

// checkRead opens the file d and reads its start and its last byte: the
// content when the block holds all of it, else what its children (only
// identity CIDs are here) give or the errors of a malformed or
// unavailable DAG. A read that does not end within seconds hangs.
func checkRead(t *testing.T, r *Reader, d *decoded) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	f, err := r.Open(ctx, d.node.CID)
	if err != nil {
		t.Fatalf("Open of a %s that decodes: %v", d.node.Kind, err)
	}
	defer f.Close()
	size := d.node.Size
	buf := make([]byte, min(size, 64<<10))
	for _, off := range []uint64{0, max(size, 1) - 1} {
		off = min(off, math.MaxInt64)
		k, err := f.ReadAt(ctx, buf, int64(off))
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("ReadAt(%d) of %s hangs", off, d.node.CID)
		case err == nil, errors.Is(err, io.EOF):
			if want := min(uint64(len(buf)), size-min(off, size)); uint64(k) != want {
				t.Fatalf("ReadAt(%d) read %d bytes (%v), want %d", off, k, err, want)
			}
			if len(d.links) == 0 && !bytes.Equal(buf[:k], d.data[off:off+uint64(k)]) {
				t.Fatalf("ReadAt(%d) reads other bytes than the block holds", off)
			}
		case len(d.links) == 0:
			t.Fatalf("ReadAt(%d) of a file without children: %v", off, err)
		case errors.Is(err, ErrMalformed), errors.Is(err, block.ErrNotFound),
			errors.Is(err, block.ErrUnsupportedCID), errors.Is(err, block.ErrCIDTooLong):
		default:
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
	}
}

// corpusEnv, set to 1, makes TestFuzzCorpus write the seed corpora.
const corpusEnv = "BSFS_WRITE_CORPUS"

// TestFuzzCorpus checks that testdata/fuzz holds the seeds of FuzzDecode
// and FuzzHAMT as this package builds them now: real blocks of every kind,
// and hand-made shards whose links repeat and loop.
func TestFuzzCorpus(t *testing.T) {
	seeds := map[string][]any{}
	for name, data := range decodeSeeds(t) {
		seeds["FuzzDecode/"+name] = []any{data}
	}
	for name, s := range hamtSeeds(t) {
		seeds["FuzzHAMT/"+name] = s
	}
	write := os.Getenv(corpusEnv) == "1"
	for name, vals := range seeds {
		var want bytes.Buffer
		want.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&want, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&want, "string(%q)\n", v)
			}
		}
		path := filepath.Join("testdata", "fuzz", filepath.FromSlash(name))
		if write {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("seed %s missing or stale (%v): rewrite the corpus with %s=1 go test -run TestFuzzCorpus", path, err, corpusEnv)
		}
	}
}

// decodeSeeds returns real blocks of each kind, added by this package.
func decodeSeeds(t *testing.T) map[string][]byte {
	s := memStore{}
	ctx := t.Context()
	big, err := AddFile(ctx, s, bytes.NewReader(blocktest.SeededBytes(2*chunkSize+100, 1)), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A small file of several levels over dag-pb leaves.
	a := &adder{ds: &dagService{dst: s, ctx: ctx}, chunk: 64, links: 3, dagpbLeaves: true}
	nd, err := a.file(ctx, bytes.NewReader(blocktest.SeededBytes(64*7+5, 2)))
	if err != nil {
		t.Fatal(err)
	}
	small := decodeT(t, s, nd.Cid())
	tree := writeTree(t)
	dir, err := AddPath(ctx, s, tree, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Local(s), Config{})
	shard, _ := hamtDir(t, s, 100, 16)
	return map[string][]byte{
		"file-root":     mustGet(t, s, big).Data,
		"file-node":     mustGet(t, s, small.links[0].cid).Data,
		"file-small":    mustGet(t, s, nd.Cid()).Data,
		"leaf-dagpb":    mustGet(t, s, decodeT(t, s, small.links[0].cid).links[0].cid).Data,
		"leaf-raw":      mustGet(t, s, mustResolve(t, r, dir, "a.txt")).Data,
		"directory":     mustGet(t, s, dir).Data,
		"hamt-shard":    mustGet(t, s, shard).Data,
		"symlink":       mustGet(t, s, mustResolve(t, r, dir, "link")).Data,
		"identity-kids": identityKidsFile(t),
	}
}

func decodeT(t *testing.T, s Store, c cid.Cid) *decoded {
	t.Helper()
	d, err := decode(mustGet(t, s, c))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// identityKidsFile is a file node whose children are identity CIDs, which
// FuzzDecode's store serves: "ab" inline, then "cde" and "fg".
func identityKidsFile(t *testing.T) []byte {
	n := unixfsNode(t, &pb.Data{Type: pb.Data_File.Enum(), Data: []byte("ab"), Filesize: proto.Uint64(7), Blocksizes: []uint64{3, 2}})
	for _, kid := range []string{"cde", "fg"} {
		h, err := mh.Sum([]byte(kid), mh.IDENTITY, -1)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.AddRawLink("", &ipld.Link{Cid: cid.NewCidV1(cid.Raw, h), Size: uint64(len(kid))}); err != nil {
			t.Fatal(err)
		}
	}
	return mustEncode(t, n)
}

// unixfsNode is a dag-pb node holding the UnixFS message m.
func unixfsNode(t *testing.T, m *pb.Data) *merkledag.ProtoNode {
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return merkledag.NodeWithData(data)
}
