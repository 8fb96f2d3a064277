package fs_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/network"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/testnode"
)

// emptyTree writes a source tree full of empty things: empty files at the
// top, in a package and hidden, and an empty directory nested in another.
func emptyTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "tree")
	for name, data := range map[string]string{
		"empty.txt":       "",
		"pkg/__init__.py": "",
		"pkg/mod.py":      "x = 1\n",
		"keep/.gitkeep":   "",
	} {
		mustWrite(t, filepath.Join(src, name), []byte(data))
	}
	if err := os.MkdirAll(filepath.Join(src, "nested", "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return src
}

// TestMountKuboEmptyFiles lists (ls -l) and reads (cat) through the mount
// a Kubo-added tree holding empty files and an empty directory, over each
// Bitswap version, with every fetch bounded by a few seconds. The empty
// block comes from no one: bsfs never wants it on the wire.
func TestMountKuboEmptyFiles(t *testing.T) {
	mounttest.RequireFUSE(t)
	kubo := kubotest.Start(t)
	src := emptyTree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := kubo.Run(ctx, "add", "-r", "-Q", "--hidden", "--cid-version=1", src)
	if err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("kubo add printed %q: %v", out, err)
	}
	empty, err := kubo.Add(ctx, nil, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []protocol.ID{message.Protocol120, message.Protocol110, message.Protocol100} {
		t.Run(string(proto), func(t *testing.T) {
			n := newNodeWith(t, exchange.Config{Network: network.Config{Protocols: []protocol.ID{proto}}})
			rec := testnode.RecordWants(t, n.host)
			kubo.Dial(ctx, t, n.host)
			dir := mount(t, n.ex, bsfs.Config{ReadTimeout: 5 * time.Second, UnixFS: unixfsConfig(n)})
			top := filepath.Join(dir, root.String())

			runCommands(t, ctx, top)
			checkSameTree(t, src, top)
			// The recorder hears wants: a block nobody has is wanted of it
			// (the root's want may have been answered by Kubo and
			// cancelled before it was sent to the recorder).
			absent, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("nobody has this, " + string(proto)))
			if err != nil {
				t.Fatal(err)
			}
			actx, acancel := context.WithTimeout(ctx, 20*time.Second)
			done := make(chan struct{})
			go func() {
				defer close(done)
				n.ex.GetBlock(actx, absent) // ends with actx
			}()
			for !rec.Wanted(absent) && actx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			acancel()
			<-done
			if !rec.Wanted(absent) {
				t.Fatal("the recorder heard no want for a block nobody has: it hears nothing")
			}
			if rec.Wanted(empty) {
				t.Errorf("bsfs wanted the empty block %s on the wire", empty)
			}
		})
	}
}

// runCommands runs ls -l and cat, the commands themselves, each bounded,
// on the tree mounted at top.
func runCommands(t *testing.T, ctx context.Context, top string) {
	t.Helper()
	for _, args := range [][]string{{"ls", "-lRa", top}, {"cat", filepath.Join(top, "empty.txt"), filepath.Join(top, "pkg", "__init__.py"), filepath.Join(top, "keep", ".gitkeep")}} {
		cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := exec.CommandContext(cctx, args[0], args[1:]...).CombinedOutput()
		ccancel()
		if err != nil {
			t.Fatalf("%s through the mount: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "cat" && len(out) != 0 {
			t.Fatalf("cat of the empty files printed %q", out)
		}
	}
}

// checkSameTree checks that every name, type, size and content under top
// is src's.
func checkSameTree(t *testing.T, src, top string) {
	t.Helper()
	var names []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		names = append(names, rel)
		want, err := os.Lstat(path)
		if err != nil {
			return err
		}
		got, err := os.Lstat(filepath.Join(top, rel))
		if err != nil {
			t.Fatalf("stat %s through the mount: %v", rel, err)
		}
		if got.IsDir() != want.IsDir() || (!want.IsDir() && got.Size() != want.Size()) {
			t.Fatalf("%s: dir %v size %d through the mount, want dir %v size %d", rel, got.IsDir(), got.Size(), want.IsDir(), want.Size())
		}
		if want.IsDir() {
			wl, _ := os.ReadDir(path)
			gl, err := os.ReadDir(filepath.Join(top, rel))
			if err != nil || len(gl) != len(wl) {
				t.Fatalf("%s lists %d entries through the mount (%v), want %d", rel, len(gl), err, len(wl))
			}
			return nil
		}
		wb, _ := os.ReadFile(path)
		gb, err := os.ReadFile(filepath.Join(top, rel))
		if err != nil || !bytes.Equal(gb, wb) {
			t.Fatalf("%s through the mount: %q, %v; want %q", rel, gb, err, wb)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 9 {
		t.Fatalf("walked %v, want the 9 paths of the tree", names)
	}
}
