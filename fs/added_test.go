package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"

	"github.com/bsfs/bsfs/block"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/unixfs"
)

// TestAddedTree mounts a file stored as `ipfs add --cid-version=1` stores
// it (256 KiB leaves), a symlink to it, and a HAMT-sharded directory,
// looked up by name before and after it is listed.
func TestAddedTree(t *testing.T) {
	n := newNode(t)
	big := blocktest.RandomBytes(t, 1<<20+12345)
	bigCID, err := unixfs.AddFile(context.Background(), n.bs, bytes.NewReader(big), unixfs.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	linkData, err := ft.SymlinkData("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	link := protoBlock(t, linkData)
	const entries = 2000
	sharded := buildHAMT(t, n, entries)
	top := dirBlock(t, 0, time.Time{}, map[string]cid.Cid{"big.bin": bigCID, "link": link.CID, "many": sharded})
	n.put(t, link, top)

	dir := mount(t, n.ex, bsfs.Config{})
	root := filepath.Join(dir, top.CID.String())
	got, err := os.ReadFile(filepath.Join(root, "many", "file-1234"))
	if err != nil || string(got) != "file 2\n" {
		t.Errorf("read many/file-1234 before listing: %q, %v", got, err)
	}
	ents, err := os.ReadDir(filepath.Join(root, "many"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != entries {
		t.Fatalf("many/ lists %d entries, want %d", len(ents), entries)
	}
	for i, e := range ents {
		if want := fmt.Sprintf("file-%04d", i); e.Name() != want || !e.Type().IsRegular() {
			t.Fatalf("entry %d: %s %v, want regular file %s", i, e.Name(), e.Type(), want)
		}
	}
	got, err = os.ReadFile(filepath.Join(root, "many", "file-0043"))
	if err != nil || string(got) != "file 3\n" {
		t.Errorf("read many/file-0043 after listing: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(root, "many", "file-9999")); !os.IsNotExist(err) {
		t.Errorf("stat many/file-9999: %v, want not found", err)
	}
	for _, p := range []string{"big.bin", "link"} {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("read %s: %d bytes, %v; want %d", p, len(got), err, len(big))
		}
	}
	buf := make([]byte, 256)
	k, err := syscall.Getxattr(filepath.Join(root, "many"), "user.bsfs.cid", buf)
	if err != nil || string(buf[:k]) != sharded.String() {
		t.Errorf("user.bsfs.cid of many/: %q, %v; want %s", buf[:k], err, sharded)
	}
}

// buildHAMT stores on n a HAMT-sharded directory of entries names,
// file-0000 on, whose contents are "file <i mod 4>\n", and returns its root.
func buildHAMT(t *testing.T, n *testNode, entries int) cid.Cid {
	t.Helper()
	ctx := context.Background()
	ds := &memDAG{nodes: map[cid.Cid]format.Node{}}
	shard, err := hamt.NewShard(ds, 256)
	if err != nil {
		t.Fatal(err)
	}
	shard.SetCidBuilder(dagPBPrefix)
	var files [4]format.Node
	for i := range files {
		files[i] = dag.NewRawNode(fmt.Appendf(nil, "file %d\n", i))
		ds.Add(ctx, files[i])
	}
	for i := range entries {
		if err := shard.Set(ctx, fmt.Sprintf("file-%04d", i), files[i%4]); err != nil {
			t.Fatal(err)
		}
	}
	nd, err := shard.Node()
	if err != nil {
		t.Fatal(err)
	}
	ds.Add(ctx, nd)
	if fsn, err := ft.FSNodeFromBytes(nd.(*dag.ProtoNode).Data()); err != nil || fsn.Type() != ft.THAMTShard {
		t.Fatalf("built %s, not a HAMT shard (%v)", nd.Cid(), err)
	}
	for c, nd := range ds.nodes {
		n.put(t, newVerified(t, c, nd.RawData()))
	}
	return nd.Cid()
}

func newVerified(t *testing.T, c cid.Cid, data []byte) block.Block {
	t.Helper()
	b, err := block.Verified(c, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memDAG is the DAG service boxo's HAMT builder writes to.
type memDAG struct {
	mu    sync.Mutex
	nodes map[cid.Cid]format.Node
}

func (d *memDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if nd, ok := d.nodes[c]; ok {
		return nd, nil
	}
	return nil, format.ErrNotFound{Cid: c}
}

func (d *memDAG) GetMany(ctx context.Context, cids []cid.Cid) <-chan *format.NodeOption {
	out := make(chan *format.NodeOption, len(cids))
	for _, c := range cids {
		nd, err := d.Get(ctx, c)
		out <- &format.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

func (d *memDAG) Add(_ context.Context, nd format.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes[nd.Cid()] = nd
	return nil
}

func (d *memDAG) AddMany(ctx context.Context, nds []format.Node) error {
	for _, nd := range nds {
		d.Add(ctx, nd)
	}
	return nil
}

func (d *memDAG) Remove(_ context.Context, c cid.Cid) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, c)
	return nil
}

func (d *memDAG) RemoveMany(ctx context.Context, cids []cid.Cid) error {
	for _, c := range cids {
		d.Remove(ctx, c)
	}
	return nil
}
