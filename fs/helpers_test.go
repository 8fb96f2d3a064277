package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testlog"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/unixfs"
)

// Bounds of the tests' waits.
const (
	waitTimeout = 10 * time.Second
	// testReadTimeout bounds the fetches of mounts in tests.
	testReadTimeout = time.Minute
)

var (
	rawPrefix   = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}
	dagPBPrefix = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
)

// testNode is a real node: a libp2p host on loopback, a flatfs blockstore in
// a temporary directory and an exchange.
type testNode struct {
	host host.Host
	bs   *blockstore.Blockstore
	ex   *exchange.Exchange
	dir  string // the blockstore's flatfs directory
}

func newNode(t testing.TB) *testNode {
	t.Helper()
	return newNodeWith(t, exchange.Config{})
}

// newNodeWith is newNode with an exchange configured by cfg.
func newNodeWith(t testing.TB, cfg exchange.Config) *testNode {
	t.Helper()
	n := testnode.New(t, cfg)
	return &testNode{host: n.Host, bs: n.Store, ex: n.Ex, dir: n.Dir}
}

// put stores blocks on n.
func (n *testNode) put(t testing.TB, blks ...block.Block) {
	t.Helper()
	for _, b := range blks {
		if err := n.bs.Put(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// waitWantlistEmpty fails unless n's wantlist empties within waitTimeout.
func (n *testNode) waitWantlistEmpty(t *testing.T) {
	t.Helper()
	poll.UntilNil(t, waitTimeout, func() error {
		if w := n.ex.Wantlist(); len(w) > 0 {
			return fmt.Errorf("wantlist still %v after %s", w, waitTimeout)
		}
		return nil
	})
}

// waitWanted fails unless n wants c within waitTimeout.
func (n *testNode) waitWanted(t *testing.T, c cid.Cid) {
	t.Helper()
	poll.UntilNil(t, waitTimeout, func() error {
		w := n.ex.Wantlist()
		if slices.ContainsFunc(w, c.Equals) {
			return nil
		}
		return fmt.Errorf("%s not in the wantlist within %s (wantlist %v)", c, waitTimeout, w)
	})
}

// protoBlock encodes a dag-pb node with UnixFS data and links.
func protoBlock(t testing.TB, data []byte, links ...*format.Link) block.Block {
	t.Helper()
	pn := dag.NodeWithData(data)
	if err := pn.SetCidBuilder(dagPBPrefix); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if err := pn.AddRawLink(l.Name, l); err != nil {
			t.Fatal(err)
		}
	}
	b, err := block.Verified(pn.Cid(), pn.RawData())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dagFile is a UnixFS file built by hand: raw leaves under dag-pb nodes.
type dagFile struct {
	root   block.Block
	leaves []block.Block // in file order
	blocks []block.Block // every block, root last
}

// buildFile splits data into leaves of the given sizes (cycled) and links
// them under intermediate nodes of fanout leaves each, under one root, so
// that reads cross leaf and subtree boundaries.
func buildFile(t testing.TB, data []byte, leafSizes []int, fanout int) dagFile {
	t.Helper()
	var f dagFile
	type sub struct {
		b    block.Block
		size uint64
	}
	var level []sub
	for off, i := 0, 0; off < len(data); i++ {
		n := min(leafSizes[i%len(leafSizes)], len(data)-off)
		b := blocktest.NewBlock(t, rawPrefix, data[off:off+n])
		f.leaves = append(f.leaves, b)
		f.blocks = append(f.blocks, b)
		level = append(level, sub{b, uint64(n)})
		off += n
	}
	for len(level) > 1 {
		var next []sub
		for i := 0; i < len(level); i += fanout {
			group := level[i:min(i+fanout, len(level))]
			fsn := ft.NewFSNode(ft.TFile)
			var links []*format.Link
			var total uint64
			for _, s := range group {
				fsn.AddBlockSize(s.size)
				links = append(links, &format.Link{Cid: s.b.CID, Size: uint64(len(s.b.Data))})
				total += s.size
			}
			pbData, err := fsn.GetBytes()
			if err != nil {
				t.Fatal(err)
			}
			b := protoBlock(t, pbData, links...)
			f.blocks = append(f.blocks, b)
			next = append(next, sub{b, total})
		}
		level = next
	}
	f.root = level[0].b
	return f
}

// dirBlock builds a UnixFS directory of the named children.
func dirBlock(t testing.TB, mode os.FileMode, mtime time.Time, children map[string]cid.Cid) block.Block {
	t.Helper()
	var links []*format.Link
	for name, c := range children {
		links = append(links, &format.Link{Name: name, Cid: c})
	}
	return protoBlock(t, ft.FolderPBDataWithStat(mode, mtime), links...)
}

// testLog collects the mount's log lines.
type testLog struct {
	buf testlog.Buffer
}

func (l *testLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// mount mounts g in a temporary directory and unmounts it at cleanup.
func mount(t testing.TB, g unixfs.BlockGetter, cfg bsfs.Config) string {
	t.Helper()
	dir := t.TempDir()
	mountAt(t, dir, g, cfg)
	return dir
}

// mountAt mounts g at dir and unmounts it at cleanup. Unless cfg sets
// one, reads time out after testReadTimeout: a read of this process's own
// mount that never ends would keep the process from exiting, even when the
// test binary's time-out fires.
func mountAt(t testing.TB, dir string, g unixfs.BlockGetter, cfg bsfs.Config) {
	t.Helper()
	mounttest.RequireFUSE(t)
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = testReadTimeout
	}
	srv, err := bsfs.Mount(dir, g, cfg)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			mounttest.SkipFUSE(t, err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
}

// unixfsConfig reads through n's exchange and tells local blocks by n's store.
func unixfsConfig(n *testNode) unixfs.Config { return unixfs.Config{Haser: n.bs} }

// startReader runs name with args in the background, its output kept in
// buffers. done receives its exit; a test that takes it puts it back, as
// the cleanup, which kills the reader, waits for it too.
func startReader(t *testing.T, name string, args ...string) (cmd *exec.Cmd, done chan error) {
	t.Helper()
	cmd = exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = new(bytes.Buffer), new(bytes.Buffer)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, done
}

// interruptReader sends SIGINT to cmd, started by startReader to read
// path, and fails the test unless it ends, unsuccessfully, within
// waitTimeout.
func interruptReader(t *testing.T, cmd *exec.Cmd, done chan error, path string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err == nil {
			t.Fatalf("cat %s succeeded after SIGINT", path)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("cat %s still running %s after SIGINT", path, waitTimeout)
	}
}
