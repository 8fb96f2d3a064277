package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/bench/internal/node"
)

// file is one file of what was added: its bytes are the first size bytes
// of the ChaCha8 stream of seed, so that any range can be made again.
type file struct {
	path string // within the item's directory; "" when the item is the file
	size int64
	seed uint64
	sum  [sha256.Size]byte
}

// item is a root that was added: a file or a directory tree.
type item struct {
	cid   string
	dir   bool
	files []file
	top   []string // a directory's names, sorted

	// Guarded by registry.mu.
	holders []*member // nodes that store all of it for good
	read    bool      // the watched node has read some of it
}

// registry is what was added, and who holds it.
type registry struct {
	mu    sync.Mutex
	items []*item
	seq   atomic.Int64 // names the work files
}

// errSkip is an operation that found nothing to work on.
var errSkip = errors.New("nothing to do")

// op is one kind of operation and how often it runs, relatively.
type op struct {
	name   string
	weight int
	run    func(r *runner, ctx context.Context, rng *rand.Rand) error
}

// ops is the mix of work.
var ops = []op{
	{"add", 20, (*runner).opAdd},
	{"cat", 12, (*runner).opCat},
	{"get", 6, (*runner).opGet},
	{"mount read", 22, (*runner).opMountRead},
	{"mount ls", 4, (*runner).opList},
	{"peer fetch", 12, (*runner).opPeerFetch},
	{"block get+stat", 8, (*runner).opBlock},
	{"connect", 4, (*runner).opConnect},
	{"gc", 2, (*runner).opGC},
}

// pickOp picks an operation by weight.
func pickOp(rng *rand.Rand) op {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	x := rng.IntN(total)
	for _, o := range ops {
		if x < o.weight {
			return o
		}
		x -= o.weight
	}
	panic("unreachable")
}

// worker runs random operations until the deadline.
func (r *runner) worker(ctx context.Context, rng *rand.Rand) {
	for r.running(ctx) {
		o := pickOp(rng)
		octx, cancel := context.WithTimeout(ctx, r.cfg.opTimeout)
		err := o.run(r, octx, rng)
		timedOut := errors.Is(octx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case ctx.Err() != nil:
			return // interrupted: not the operation's fault
		case errors.Is(err, errSkip):
			time.Sleep(50 * time.Millisecond) // let the pool change
			continue
		case err != nil && timedOut:
			err = fmt.Errorf("not done within %v (hung): %w", r.cfg.opTimeout, err)
		}
		r.done(o.name, err)
	}
}

// running reports whether work goes on: before the deadline, not
// interrupted, and the watched node alive.
func (r *runner) running(ctx context.Context) bool {
	select {
	case <-r.watched.n.Proc.Exited():
		return false
	default:
	}
	return ctx.Err() == nil && time.Now().Before(r.deadline)
}

// fileSize draws a file's size: mostly small, now and then up to 24 MiB.
func fileSize(rng *rand.Rand) int64 {
	switch x := rng.IntN(100); {
	case x < 45:
		return rng.Int64N(64<<10 + 1)
	case x < 75:
		return 64<<10 + rng.Int64N(960<<10)
	case x < 95:
		return 1<<20 + rng.Int64N(7<<20)
	default:
		return 8<<20 + rng.Int64N(16<<20)
	}
}

// stream is the content of a file of that seed.
func stream(seed uint64) io.Reader {
	var key [32]byte
	copy(key[:], strconv.FormatUint(seed, 16))
	return rand.NewChaCha8(key)
}

// content returns bytes [off, off+n) of the file of that seed.
func content(seed uint64, off, n int64) []byte {
	buf := make([]byte, n)
	r := stream(seed)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		panic(err) // ChaCha8 never fails
	}
	io.ReadFull(r, buf)
	return buf
}

// writeFile writes f at path and fills in its sum.
func writeFile(path string, f *file) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(w, h), stream(f.seed), f.size)
	h.Sum(f.sum[:0])
	return errors.Join(err, w.Close())
}

// makeItem writes a random file, or one directory tree in four, under the
// work directory and returns its path and description.
func (r *runner) makeItem(rng *rand.Rand) (string, *item, error) {
	path := filepath.Join(r.work, "src", fmt.Sprint(r.reg.seq.Add(1)))
	it := &item{}
	if rng.IntN(4) != 0 {
		f := file{size: fileSize(rng), seed: rng.Uint64()}
		err := writeFile(path, &f)
		it.files = []file{f}
		return path, it, err
	}
	it.dir = true
	top := map[string]bool{}
	for i := range 2 + rng.IntN(11) {
		name := fmt.Sprintf("f%02d", i)
		if d := rng.IntN(4); d > 1 {
			name = fmt.Sprintf("d%d/%s", d, name)
		}
		top[strings.Split(name, "/")[0]] = true
		f := file{path: name, size: min(fileSize(rng), 4<<20), seed: rng.Uint64()}
		if err := writeFile(filepath.Join(path, name), &f); err != nil {
			return path, it, err
		}
		it.files = append(it.files, f)
	}
	for name := range top {
		it.top = append(it.top, name)
	}
	slices.Sort(it.top)
	return path, it, nil
}

// pickPeer returns a random peer that is up, held, or nil.
func (r *runner) pickPeer(rng *rand.Rand, not *member) *member {
	for _, i := range rng.Perm(len(r.peers)) {
		if m := r.peers[i]; m != not && m.hold() {
			return m
		}
	}
	return nil
}

// pickItem returns a random item that want accepts (nil: any) with a
// holder other than fetcher that is up, and that holder, held.
func (r *runner) pickItem(rng *rand.Rand, fetcher *member, want func(*item) bool) (*item, *member) {
	r.reg.mu.Lock()
	defer r.reg.mu.Unlock()
	items := r.reg.items
	for _, i := range rng.Perm(len(items)) {
		it := items[i]
		if want != nil && !want(it) || slices.Contains(it.holders, fetcher) {
			continue
		}
		for _, j := range rng.Perm(len(it.holders)) {
			if h := it.holders[j]; h.hold() {
				return it, h
			}
		}
	}
	return nil, nil
}

// hold records that m stores all of it for good.
func (r *runner) hold(it *item, m *member) {
	r.reg.mu.Lock()
	defer r.reg.mu.Unlock()
	if !slices.Contains(it.holders, m) {
		it.holders = append(it.holders, m)
	}
}

func (r *runner) markRead(it *item) {
	r.reg.mu.Lock()
	it.read = true
	r.reg.mu.Unlock()
}

// opAdd adds a new file or tree on the watched node (one time in four) or
// on a peer.
func (r *runner) opAdd(ctx context.Context, rng *rand.Rand) error {
	m := r.watched
	if rng.IntN(4) != 0 {
		if m = r.pickPeer(rng, nil); m == nil {
			return errSkip
		}
	} else if !m.hold() {
		return errSkip
	}
	defer m.release()
	if m == r.watched && !r.cfg.gcDuringAdds {
		r.gcMu.RLock()
		defer r.gcMu.RUnlock()
	}
	path, it, err := r.makeItem(rng)
	defer os.RemoveAll(path)
	if err != nil {
		return err
	}
	out, err := m.n.CLI(ctx, "add", "-r", "-Q", path)
	if err != nil {
		return fmt.Errorf("on %s: %w", m.n.Name, err)
	}
	c, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("add on %s printed %q: %w", m.n.Name, out, err)
	}
	it.cid = c.String()
	it.holders = []*member{m}
	r.reg.mu.Lock()
	r.reg.items = append(r.reg.items, it)
	r.reg.mu.Unlock()
	return nil
}

// ref is the argument naming f of it.
func ref(it *item, f file) string {
	if f.path == "" {
		return it.cid
	}
	return it.cid + "/" + f.path
}

// catCheck runs `bsfs cat` of f on m and checks the bytes.
func catCheck(ctx context.Context, m *member, it *item, f file) error {
	h := sha256.New()
	_, n, err := node.TimedCopy(ctx, h, m.n.Env(), m.n.Bin, "cat", ref(it, f))
	if err != nil {
		return fmt.Errorf("on %s: %w", m.n.Name, err)
	}
	if n != f.size || [sha256.Size]byte(h.Sum(nil)) != f.sum {
		return fmt.Errorf("cat %s on %s: %d bytes, not the %d added", ref(it, f), m.n.Name, n, f.size)
	}
	return nil
}

// opCat fetches a file with `bsfs cat` on the watched node.
func (r *runner) opCat(ctx context.Context, rng *rand.Rand) error {
	it, h := r.pickItem(rng, r.watched, nil)
	if it == nil {
		return errSkip
	}
	defer h.release()
	r.markRead(it)
	return catCheck(ctx, r.watched, it, it.files[rng.IntN(len(it.files))])
}

// getCheck runs `bsfs get` of it on m and checks every file written.
func (r *runner) getCheck(ctx context.Context, m *member, it *item) error {
	out := filepath.Join(r.work, "out", fmt.Sprint(r.reg.seq.Add(1)))
	defer os.RemoveAll(out)
	if _, err := m.n.CLI(ctx, "get", "-o", out, it.cid); err != nil {
		return fmt.Errorf("on %s: %w", m.n.Name, err)
	}
	for _, f := range it.files {
		raw, err := os.ReadFile(filepath.Join(out, f.path))
		if err != nil {
			return fmt.Errorf("get %s on %s: %w", it.cid, m.n.Name, err)
		}
		if sha256.Sum256(raw) != f.sum {
			return fmt.Errorf("get %s on %s: %s has %d bytes, not the %d added", it.cid, m.n.Name, f.path, len(raw), f.size)
		}
	}
	return nil
}

// opGet fetches a file or tree with `bsfs get` on the watched node.
func (r *runner) opGet(ctx context.Context, rng *rand.Rand) error {
	it, h := r.pickItem(rng, r.watched, nil)
	if it == nil {
		return errSkip
	}
	defer h.release()
	r.markRead(it)
	return r.getCheck(ctx, r.watched, it)
}

// opMountRead reads a file through the watched node's mount, whole or a
// range of it: half the time one it has not read yet.
func (r *runner) opMountRead(ctx context.Context, rng *rand.Rand) error {
	var want func(*item) bool
	if rng.IntN(2) == 0 {
		want = func(it *item) bool { return !it.read }
	}
	it, h := r.pickItem(rng, r.watched, want)
	if it == nil {
		return errSkip
	}
	defer h.release()
	r.markRead(it)
	f := it.files[rng.IntN(len(it.files))]
	path := filepath.Join(r.watched.mnt, it.cid, f.path)
	if rng.IntN(2) == 0 || f.size == 0 {
		return inTime(ctx, func() error {
			raw, err := os.ReadFile(path)
			if err == nil && sha256.Sum256(raw) != f.sum {
				err = fmt.Errorf("read %s: %d bytes, not the %d added", ref(it, f), len(raw), f.size)
			}
			return err
		})
	}
	off := rng.Int64N(f.size)
	n := 1 + rng.Int64N(min(f.size-off, 1<<20))
	return inTime(ctx, func() error {
		fd, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fd.Close()
		buf := make([]byte, n)
		if _, err := fd.ReadAt(buf, off); err != nil {
			return fmt.Errorf("pread %s [%d, +%d): %w", ref(it, f), off, n, err)
		}
		if !bytes.Equal(buf, content(f.seed, off, n)) {
			return fmt.Errorf("pread %s [%d, +%d): not the bytes added", ref(it, f), off, n)
		}
		return nil
	})
}

// inTime runs a read of the mount, which cannot be cancelled, and gives
// up waiting when ctx ends: a read that hangs is a failure.
func inTime(ctx context.Context, read func() error) error {
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("read through the mount hung: %w", ctx.Err())
	}
}

// opList lists the watched node's mount: every root it had added must be
// there; and a directory's names must be those added.
func (r *runner) opList(ctx context.Context, rng *rand.Rand) error {
	r.reg.mu.Lock()
	var roots []string
	for _, it := range r.reg.items {
		if it.holders[0] == r.watched {
			roots = append(roots, it.cid)
		}
	}
	r.reg.mu.Unlock()
	var ents []os.DirEntry
	err := inTime(ctx, func() (err error) {
		ents, err = os.ReadDir(r.watched.mnt)
		return err
	})
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, e := range ents {
		listed[e.Name()] = true
	}
	for _, c := range roots {
		if !listed[c] {
			return fmt.Errorf("ls of the mount lacks %s, added on the watched node (%d listed)", c, len(ents))
		}
	}
	it, h := r.pickItem(rng, r.watched, func(it *item) bool { return it.dir })
	if it == nil {
		return nil
	}
	defer h.release()
	r.markRead(it)
	return inTime(ctx, func() error {
		ents, err := os.ReadDir(filepath.Join(r.watched.mnt, it.cid))
		if err != nil {
			return err
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, it.top) {
			return fmt.Errorf("ls %s: %q, want %q", it.cid, names, it.top)
		}
		return nil
	})
}

// opPeerFetch has a peer fetch what another node holds: a file with
// `cat`, a tree with `get`. The peer then holds it too.
func (r *runner) opPeerFetch(ctx context.Context, rng *rand.Rand) error {
	p := r.pickPeer(rng, nil)
	if p == nil {
		return errSkip
	}
	defer p.release()
	it, h := r.pickItem(rng, p, nil)
	if it == nil {
		return errSkip
	}
	defer h.release()
	if h != r.watched {
		// They may both have come back since they last met.
		if err := p.n.Connect(ctx, h.n); err != nil {
			return fmt.Errorf("%s to %s: %w", p.n.Name, h.n.Name, err)
		}
	}
	var err error
	if it.dir {
		err = r.getCheck(ctx, p, it)
	} else {
		err = catCheck(ctx, p, it, it.files[0])
	}
	if err == nil {
		r.hold(it, p)
	}
	return err
}

// opBlock fetches a root block with `bsfs block get` on the watched node,
// checks it hashes to its CID, and `bsfs block stat` gives its size.
func (r *runner) opBlock(ctx context.Context, rng *rand.Rand) error {
	it, h := r.pickItem(rng, r.watched, nil)
	if it == nil {
		return errSkip
	}
	defer h.release()
	data, err := r.watched.n.CLI(ctx, "block", "get", "--timeout", "60s", it.cid)
	if err != nil {
		return err
	}
	c, err := cid.Decode(it.cid)
	if err != nil {
		return err
	}
	if got, err := c.Prefix().Sum(data); err != nil || !got.Equals(c) {
		return fmt.Errorf("block get %s: %d bytes that hash to %v (%v)", c, len(data), got, err)
	}
	out, err := r.watched.n.CLI(ctx, "block", "stat", it.cid)
	if err != nil {
		// Evicted or collected in between is allowed; anything else not.
		if strings.Contains(err.Error(), "not found") {
			return nil
		}
		return err
	}
	if want := fmt.Sprintf("Key: %s\nSize: %d\n", c, len(data)); string(out) != want {
		return fmt.Errorf("block stat %s: %q, want %q", c, out, want)
	}
	return nil
}

// opConnect connects a peer to the watched node or to another peer.
func (r *runner) opConnect(ctx context.Context, rng *rand.Rand) error {
	p := r.pickPeer(rng, nil)
	if p == nil {
		return errSkip
	}
	defer p.release()
	o := r.watched
	if rng.IntN(2) == 0 {
		if q := r.pickPeer(rng, p); q != nil {
			defer q.release()
			o = q
		}
	}
	if err := p.n.Connect(ctx, o.n); err != nil {
		return fmt.Errorf("%s to %s: %w", p.n.Name, o.n.Name, err)
	}
	return nil
}

// opGC collects the watched node's garbage: what it fetched and did not
// pin. Unless -gc-during-adds, never while an add runs on the watched node:
// a gc that runs between an add's blocks and its pin deletes them, and the
// add then waits for peers to send them.
func (r *runner) opGC(ctx context.Context, _ *rand.Rand) error {
	if !r.cfg.gcDuringAdds {
		r.gcMu.Lock()
		defer r.gcMu.Unlock()
	}
	_, err := r.watched.n.CLI(ctx, "gc")
	return err
}
