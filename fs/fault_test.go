package fs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"go.uber.org/goleak"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/mounttest"
)

// catInterrupted starts `cat path`, waits until want is on n's wantlist
// (cat is blocked in the fetch), interrupts cat as Ctrl-C would, and checks
// that cat ends promptly and the want leaves the wantlist.
func catInterrupted(t *testing.T, n *testNode, path string, want cid.Cid) {
	t.Helper()
	readInterrupted(t, n, want, "cat", path)
}

// readInterrupted is catInterrupted with the reader name and args.
func readInterrupted(t *testing.T, n *testNode, want cid.Cid, name string, args ...string) {
	t.Helper()
	path := args[len(args)-1]
	cmd, done := startReader(t, name, args...)
	n.waitWanted(t, want)
	interruptReader(t, cmd, done, path)
	n.waitWantlistEmpty(t)
}

// TestInterrupt interrupts a cat blocked on a root nobody has (in lookup)
// and on a leaf nobody has (in read), then checks the mount still serves
// the content once it arrives.
func TestInterrupt(t *testing.T) {
	n := newNode(t)
	dir := mount(t, n.ex, bsfs.Config{})

	missing := blocktest.NewBlock(t, rawPrefix, []byte("nobody has this block"))
	catInterrupted(t, n, filepath.Join(dir, missing.CID.String()), missing.CID)
	catInterrupted(t, n, filepath.Join(dir, "raw", missing.CID.String()), missing.CID)

	data := blocktest.RandomBytes(t, 5000)
	f := buildFile(t, data, []int{1000}, 8)
	n.put(t, f.root, f.leaves[0], f.leaves[1], f.leaves[3], f.leaves[4])
	path := filepath.Join(dir, f.root.CID.String())
	// A reader that handles SIGINT itself (Python raises
	// KeyboardInterrupt) is not killed by it: its read must end all the
	// same.
	if python, err := exec.LookPath("python3"); err == nil {
		readInterrupted(t, n, f.leaves[2].CID, python, "-c", "import sys; open(sys.argv[1], 'rb').read()", path)
	} else {
		t.Log("no python3: a reader that handles SIGINT is not tried")
	}
	catInterrupted(t, n, path, f.leaves[2].CID)

	n.put(t, f.leaves[2], missing)
	for p, want := range map[string][]byte{path: data, filepath.Join(dir, missing.CID.String()): missing.Data} {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("read %s once its blocks are local: %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
	}
}

// TestReadTimeout checks that a read waiting longer than the time-out fails
// with EIO, logs the CID and drops its want.
func TestReadTimeout(t *testing.T) {
	n := newNode(t)
	var log testLog
	dir := mount(t, n.ex, bsfs.Config{ReadTimeout: 200 * time.Millisecond, Logger: log.logger()})
	data := blocktest.RandomBytes(t, 3000)
	f := buildFile(t, data, []int{1000}, 8)
	n.put(t, f.root, f.leaves[0], f.leaves[2])
	path := filepath.Join(dir, f.root.CID.String())
	if _, err := os.ReadFile(path); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with a missing leaf: %v, want EIO", err)
	}
	if !strings.Contains(log.buf.String(), f.root.CID.String()) {
		t.Errorf("log does not name %s:\n%s", f.root.CID, log.buf.String())
	}
	missing := blocktest.NewBlock(t, rawPrefix, []byte("nobody has this block either"))
	if _, err := os.Stat(filepath.Join(dir, missing.CID.String())); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat of a missing root: %v, want EIO", err)
	}
	if !strings.Contains(log.buf.String(), missing.CID.String()) {
		t.Errorf("log does not name %s:\n%s", missing.CID, log.buf.String())
	}
	n.waitWantlistEmpty(t)
	// A failure is not cached: the read succeeds once the leaf is here.
	n.put(t, f.leaves[1])
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read once the leaf is local: %d bytes, %v", len(got), err)
	}
}

// panicGetter injects a fault: a block getter that panics for one CID.
type panicGetter struct {
	*testNode
	bad cid.Cid
}

func (g panicGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	if c.Equals(g.bad) {
		panic("injected fault")
	}
	return g.ex.GetBlock(ctx, c)
}

func (g panicGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	return g.ex.GetBlocks(ctx, cids)
}

// TestPanicIsEIO checks that a handler's panic fails that call with EIO
// and leaves the mount working.
func TestPanicIsEIO(t *testing.T) {
	n := newNode(t)
	bad := blocktest.NewBlock(t, rawPrefix, []byte("bad"))
	good := blocktest.NewBlock(t, rawPrefix, []byte("good"))
	n.put(t, bad, good)
	var log testLog
	dir := mount(t, panicGetter{n, bad.CID}, bsfs.Config{Logger: log.logger()})
	for range 2 {
		if _, err := os.ReadFile(filepath.Join(dir, "raw", bad.CID.String())); !errors.Is(err, syscall.EIO) {
			t.Errorf("read of the panicking block: %v, want EIO", err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "raw", good.CID.String())); err != nil || string(got) != "good" {
			t.Errorf("read after a panic: %q, %v", got, err)
		}
	}
	if !strings.Contains(log.buf.String(), "injected fault") {
		t.Errorf("the panic is not logged:\n%s", log.buf.String())
	}
}

// helperEnv makes the test binary a process that mounts at the directory
// it names and serves until killed (see TestMain).
const helperEnv = "BSFS_FS_TEST_MOUNT"

// TestMain runs the test binary as TestStaleMount's helper process when
// helperEnv names a directory. Otherwise it runs the tests and fails the
// run if a goroutine outlives them: every Close waits for what it started.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		if err := helperMount(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	goleak.VerifyTestMain(m)
}

// helperMount mounts an empty node's content at dir, says "mounted" and
// serves until the process is killed.
func helperMount(dir string) error {
	h, err := network.NewHost(network.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		return err
	}
	store, err := os.MkdirTemp("", "bsfs-helper-")
	if err != nil {
		return err
	}
	bs, err := blockstore.Open(store, blockstore.Config{NoSync: true})
	if err != nil {
		return err
	}
	ex, err := exchange.New(h, bs, exchange.Config{})
	if err != nil {
		return err
	}
	if _, err := bsfs.Mount(dir, ex, bsfs.Config{}); err != nil {
		return err
	}
	os.Stdout.WriteString("mounted\n")
	time.Sleep(time.Hour) // until killed
	return nil
}

// TestStaleMount kills a process serving a mount, as kill -9 would, and
// mounts again at the same place: the dead mount is detached, with a
// message.
func TestStaleMount(t *testing.T) {
	mounttest.RequireFUSE(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.timeout=5m")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mounted := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "mounted" {
				mounted <- true
				return
			}
		}
		mounted <- false
	}()
	select {
	case ok := <-mounted:
		if !ok {
			cmd.Wait()
			if strings.Contains(stderr.String(), "SKIP") || strings.Contains(stderr.String(), "permission") {
				mounttest.SkipFUSE(t, "helper could not mount: "+stderr.String())
			}
			t.Fatalf("helper did not mount; stderr: %s", stderr.String())
		}
	case <-time.After(waitTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not mount within %s", waitTimeout)
	}
	cmd.Process.Kill()
	cmd.Wait()
	n := newNode(t)
	b := blocktest.NewBlock(t, rawPrefix, []byte("served by the new mount"))
	// Every request fails at once: the kernel aborted the connection.
	if _, err := os.Stat(dir); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, b.CID.String())); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("read on the dead mount: %v, want ENOTCONN", err)
	}

	n.put(t, b)
	var log testLog
	mountAt(t, dir, n.ex, bsfs.Config{Logger: log.logger()})
	if got, err := os.ReadFile(filepath.Join(dir, b.CID.String())); err != nil || !bytes.Equal(got, b.Data) {
		t.Errorf("read through the new mount: %q, %v", got, err)
	}
	if !strings.Contains(log.buf.String(), "stale mount") {
		t.Errorf("no message about the stale mount in the log:\n%s", log.buf.String())
	}
}

// eofGetter injects a fault: fetches of one CID fail with an error that
// wraps io.EOF, as net/http reports a daemon gone in the middle of a
// request.
type eofGetter struct {
	*testNode
	bad cid.Cid
}

func (g eofGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	if c.Equals(g.bad) {
		return block.Block{}, fmt.Errorf("post blocks: %w", io.EOF)
	}
	return g.ex.GetBlock(ctx, c)
}

func (g eofGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	if slices.ContainsFunc(cids, g.bad.Equals) {
		return nil, fmt.Errorf("post blocks: %w", io.EOF)
	}
	return g.ex.GetBlocks(ctx, cids)
}

// TestWrappedEOFIsEIO: a fetch error that wraps io.EOF fails the read with
// EIO; it is not taken for the end of the file, which would cut it short.
func TestWrappedEOFIsEIO(t *testing.T) {
	n := newNode(t)
	data := blocktest.RandomBytes(t, 4*256<<10)
	f := buildFile(t, data, []int{256 << 10}, 174)
	n.put(t, f.blocks...)
	dir := mount(t, eofGetter{n, f.leaves[2].CID}, bsfs.Config{UnixFS: unixfsConfig(n)})
	got, err := os.ReadFile(filepath.Join(dir, f.root.CID.String()))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read of a file whose third leaf fails with a wrapped EOF: %d of %d bytes, %v; want EIO", len(got), len(data), err)
	}
}
