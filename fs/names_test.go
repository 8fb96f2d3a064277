package fs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/internal/poll"
)

// fakeNames is the mount's resolver in these tests, where faults are
// injected: a name answers what answers holds for it, fails with err if
// set, blocks until its context ends if blocking, and is otherwise not
// found. Every call is recorded.
type fakeNames struct {
	mu       sync.Mutex
	answers  map[string]names.Resolved
	failing  map[string]error
	blocking map[string]bool
	calls    []nameCall

	blocked chan string // a blocking call has begun
	ended   chan error  // a blocking call's context ended with this
}

// nameCall is one call of the resolver: which name, when it began and
// when it returned.
type nameCall struct {
	name       string
	start, end time.Time
}

func newFakeNames() *fakeNames {
	return &fakeNames{
		answers:  make(map[string]names.Resolved),
		failing:  make(map[string]error),
		blocking: make(map[string]bool),
		blocked:  make(chan string, 16),
		ended:    make(chan error, 16),
	}
}

// ResolveName answers as set for name.
func (f *fakeNames) ResolveName(ctx context.Context, name string) (names.Resolved, error) {
	start := time.Now()
	f.mu.Lock()
	res, ok := f.answers[name]
	err := f.failing[name]
	block := f.blocking[name]
	f.mu.Unlock()
	switch {
	case block:
		f.blocked <- name
		<-ctx.Done()
		f.ended <- ctx.Err()
		err = ctx.Err()
	case err == nil && !ok:
		err = fmt.Errorf("%s: %w", name, names.ErrNotFound)
	}
	f.mu.Lock()
	f.calls = append(f.calls, nameCall{name: name, start: start, end: time.Now()})
	f.mu.Unlock()
	if err != nil {
		return names.Resolved{}, err
	}
	return res, nil
}

// set makes name resolve to root, then rest, for ttl.
func (f *fakeNames) set(name string, root cid.Cid, ttl time.Duration, rest ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[name] = names.Resolved{Root: root, Rest: rest, TTL: ttl}
}

// callsOf returns the calls for name so far.
func (f *fakeNames) callsOf(name string) []nameCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cs []nameCall
	for _, c := range f.calls {
		if c.name == name {
			cs = append(cs, c)
		}
	}
	return cs
}

// totalCalls counts every call so far.
func (f *fakeNames) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// newKeyNames returns a fresh libp2p key's peer ID in its usual form and
// as a CIDv1 libp2p-key in base36, the two ways an IPNS name is written.
func newKeyNames(t *testing.T) (string, string) {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := peer.ToCid(id).StringOfBase(multibase.Base36)
	if err != nil {
		t.Fatal(err)
	}
	return id.String(), k
}

// readEqual fails unless path reads as want.
func readEqual(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %s: %d bytes %q..., want %d bytes %q...", path, len(got), got[:min(len(got), 16)], len(want), want[:min(len(want), 16)])
	}
}

// nameTree is content the names point at: top/file, and top/a/b/file.
type nameTree struct {
	top, file, deep cid.Cid
	fileData        []byte
	deepData        []byte
}

func newNameTree(t *testing.T, n *testNode) nameTree {
	t.Helper()
	tr := nameTree{fileData: blocktest.RandomBytes(t, 5000), deepData: blocktest.RandomBytes(t, 3000)}
	file := blocktest.NewBlock(t, rawPrefix, tr.fileData)
	deep := blocktest.NewBlock(t, rawPrefix, tr.deepData)
	mtime := time.Unix(1_700_000_000, 0)
	b := dirBlock(t, 0o555, mtime, map[string]cid.Cid{"file": deep.CID})
	a := dirBlock(t, 0o555, mtime, map[string]cid.Cid{"b": b.CID})
	top := dirBlock(t, 0o555, mtime, map[string]cid.Cid{"file": file.CID, "a": a.CID})
	n.put(t, file, deep, b, a, top)
	tr.top, tr.file, tr.deep = top.CID, file.CID, deep.CID
	return tr
}

// TestIPNSNames reads content through DIR/ipns/<name> for the three kinds
// of name, with and without a path below the CID, and checks that names
// that do not resolve, that cannot be names, or whose record is hostile
// are ENOENT, and that a resolved name is asked for once within its TTL.
func TestIPNSNames(t *testing.T) {
	n := newNode(t)
	tr := newNameTree(t, n)
	res := newFakeNames()
	var log testLog
	dir := mount(t, n.ex, bsfs.Config{Names: res, Logger: log.logger()})
	ipns := filepath.Join(dir, "ipns")

	peerID, keyCID := newKeyNames(t)
	res.set(peerID, tr.top, time.Hour)
	res.set(keyCID, tr.top, time.Hour, "a", "b")
	res.set("docs.example.test", tr.top, time.Hour, "a", "b", "file")

	readEqual(t, filepath.Join(ipns, peerID, "file"), tr.fileData)
	readEqual(t, filepath.Join(dir, tr.top.String(), "file"), tr.fileData)
	readEqual(t, filepath.Join(ipns, keyCID, "file"), tr.deepData)
	readEqual(t, filepath.Join(ipns, "docs.example.test"), tr.deepData)
	for name, want := range map[string]string{
		peerID:              "../" + tr.top.String(),
		keyCID:              "../" + tr.top.String() + "/a/b",
		"docs.example.test": "../" + tr.top.String() + "/a/b/file",
	} {
		got, err := os.Readlink(filepath.Join(ipns, name))
		if err != nil || got != want {
			t.Errorf("readlink ipns/%s: %q, %v; want %q", name, got, err, want)
		}
		fi, err := os.Lstat(filepath.Join(ipns, name))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Size() != int64(len(want)) {
			t.Errorf("lstat ipns/%s: %v, %v; want a symlink of %d bytes", name, fi, err, len(want))
		}
		// Read again: within the TTL the resolver is not asked again.
		if _, err := os.Stat(filepath.Join(ipns, name)); err != nil {
			t.Error(err)
		}
		if cs := res.callsOf(name); len(cs) != 1 {
			t.Errorf("ipns/%s: resolver asked %d times within an hour's TTL, want once", name, len(cs))
		}
	}
	if ents, err := os.ReadDir(ipns); err != nil || len(ents) != 0 {
		t.Errorf("ls ipns: %v, %v; want empty", ents, err)
	}

	// Names that do not resolve, or resolve to what no path may be.
	res.mu.Lock()
	res.failing["down.example.test"] = errors.New("every router failed")
	res.mu.Unlock()
	res.set("climb.example.test", tr.top, time.Hour, "..", "..")
	md5, err := mh.Encode(make([]byte, 16), mh.MD5) // a hash bsfs cannot check
	if err != nil {
		t.Fatal(err)
	}
	res.set("notfetchable.example.test", cid.NewCidV1(cid.Raw, md5), time.Hour)
	for _, name := range []string{"missing.example.test", "down.example.test", "climb.example.test", "notfetchable.example.test"} {
		for range 2 {
			if _, err := os.Stat(filepath.Join(ipns, name)); !errors.Is(err, syscall.ENOENT) {
				t.Errorf("stat ipns/%s: %v, want ENOENT", name, err)
			}
		}
		// Not cached: the next lookup asks again.
		if cs := res.callsOf(name); len(cs) != 2 {
			t.Errorf("ipns/%s: resolver asked %d times by two lookups, want 2", name, len(cs))
		}
		if !strings.Contains(log.buf.String(), name) {
			t.Errorf("log does not name %s:\n%s", name, log.buf.String())
		}
	}

	// Names that cannot be names: ENOENT without asking.
	before := res.totalCalls()
	for _, name := range []string{
		"localhost", "not-a-name", "127.0.0.1", "-bad.example.test", "bad-.example.test",
		"a..example.test", "under_score.example.test", "Qmfoo", tr.top.String(), tr.file.String(),
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 64) + ".test",
		strings.Repeat(strings.Repeat("a", 62)+".", 4) + "test", // 256 bytes
	} {
		if _, err := os.Stat(filepath.Join(ipns, name)); !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("stat ipns/%s: %v, want ENOENT", name, err)
		}
	}
	if n := res.totalCalls() - before; n != 0 {
		t.Errorf("the resolver was asked %d times about names that cannot be names", n)
	}
}

// TestIPFSPaths reads DIR/ipfs/<cid> as DIR/<cid>, and checks the top of
// the mount: DIR/ipns is absent without a resolver, and none of the three
// directories is listed there.
func TestIPFSPaths(t *testing.T) {
	n := newNode(t)
	tr := newNameTree(t, n)
	dir := mount(t, n.ex, bsfs.Config{})
	readEqual(t, filepath.Join(dir, "ipfs", tr.top.String(), "file"), tr.fileData)
	readEqual(t, filepath.Join(dir, "ipfs", tr.top.String(), "a", "b", "file"), tr.deepData)
	readEqual(t, filepath.Join(dir, "ipfs", tr.deep.String()), tr.deepData)
	for _, p := range []string{"ipfs/not-a-cid", "ipfs/raw", "ipns", "ipns/docs.example.test"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat %s: %v, want ENOENT", p, err)
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, "ipfs")} {
		if ents, err := os.ReadDir(p); err != nil || len(ents) != 0 {
			t.Errorf("ls %s: %v, %v; want empty", p, ents, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "ipfs")); err != nil || !fi.IsDir() {
		t.Errorf("stat ipfs: %v, %v; want a directory", fi, err)
	}
}

// TestIPNSInterrupt interrupts a cat whose lookup waits for a name that
// never resolves, as Ctrl-C would: cat ends promptly and the resolver's
// context is cancelled.
func TestIPNSInterrupt(t *testing.T) {
	n := newNode(t)
	res := newFakeNames()
	res.blocking["slow.example.test"] = true
	dir := mount(t, n.ex, bsfs.Config{Names: res})
	path := filepath.Join(dir, "ipns", "slow.example.test", "x")
	cmd, done := startReader(t, "cat", path)
	select {
	case <-res.blocked:
	case <-time.After(waitTimeout):
		t.Fatalf("cat %s did not ask the resolver within %s", path, waitTimeout)
	}
	interruptReader(t, cmd, done, path)
	select {
	case err := <-res.ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the resolver's context ended with %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the resolver's context still alive %s after cat was interrupted", waitTimeout)
	}
}

// TestIPNSReadTimeout checks that resolving a name that never answers
// fails with EIO after the read time-out, with a log line naming it.
func TestIPNSReadTimeout(t *testing.T) {
	n := newNode(t)
	res := newFakeNames()
	res.blocking["slow.example.test"] = true
	var log testLog
	dir := mount(t, n.ex, bsfs.Config{Names: res, ReadTimeout: 300 * time.Millisecond, Logger: log.logger()})
	if _, err := os.Stat(filepath.Join(dir, "ipns", "slow.example.test", "x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("stat through a name that never resolves: %v, want EIO", err)
	}
	if err := <-res.ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the resolver's context ended with %v, want its deadline", err)
	}
	if s := log.buf.String(); !strings.Contains(s, "slow.example.test") || !strings.Contains(s, "time-out") {
		t.Errorf("log does not name the name and the time-out:\n%s", s)
	}
}

// TestIPNSTTL republishes a name while the mount keeps it. Until its TTL
// has passed (counted from the resolver's answer) the old content shows
// and the resolver is not asked again; then the new content shows. After
// a second republishing a bare lstat, which the kernel answers from its
// cache while it may, asks again once the TTL has passed: the kernel was
// told to keep the link no longer.
func TestIPNSTTL(t *testing.T) {
	n := newNode(t)
	const ttl = 2 * time.Second
	const name = "site.example.test"
	var tops []cid.Cid
	var files [][]byte
	for _, v := range []string{"first", "second", "third"} {
		f := blocktest.NewBlock(t, rawPrefix, []byte(v+" version of the site"))
		top := dirBlock(t, 0o555, time.Unix(1_700_000_000, 0), map[string]cid.Cid{"file": f.CID})
		n.put(t, f, top)
		tops, files = append(tops, top.CID), append(files, f.Data)
	}
	res := newFakeNames()
	res.set(name, tops[0], ttl)
	dir := mount(t, n.ex, bsfs.Config{Names: res})
	path := filepath.Join(dir, "ipns", name, "file")

	readEqual(t, path, files[0])
	res.set(name, tops[1], ttl)
	first := res.callsOf(name)[0]
	reads := 0
	poll.UntilNil(t, ttl+waitTimeout, func() error {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		if time.Now().Before(first.end.Add(ttl)) && !bytes.Equal(got, files[0]) {
			t.Fatalf("within the TTL: %q, want %q", got, files[0])
		}
		if !bytes.Equal(got, files[1]) {
			return fmt.Errorf("%q still read %s after the TTL, want %q", got, waitTimeout, files[1])
		}
		return nil
	})
	cs := res.callsOf(name)
	if len(cs) != 2 {
		t.Fatalf("resolver asked %d times by %d reads over one TTL and a bit, want twice", len(cs), reads)
	}
	if cs[1].start.Before(first.end.Add(ttl)) {
		t.Fatalf("resolver asked again %s after its answer, within the TTL of %s", cs[1].start.Sub(first.end), ttl)
	}

	res.set(name, tops[2], ttl)
	poll.UntilNil(t, ttl+waitTimeout, func() error {
		if _, err := os.Lstat(filepath.Join(dir, "ipns", name)); err != nil {
			t.Fatal(err)
		}
		if len(res.callsOf(name)) < 3 {
			return fmt.Errorf("lstat did not ask for %s again within %s of the TTL's end", name, waitTimeout)
		}
		return nil
	})
	if cs := res.callsOf(name); cs[2].start.Before(cs[1].end.Add(ttl)) {
		t.Fatalf("resolver asked again %s after its answer, within the TTL of %s", cs[2].start.Sub(cs[1].end), ttl)
	}
	if got, err := os.Readlink(filepath.Join(dir, "ipns", name)); err != nil || got != "../"+tops[2].String() {
		t.Errorf("readlink after the second TTL: %q, %v; want ../%s", got, err, tops[2])
	}
	readEqual(t, path, files[2])
}
