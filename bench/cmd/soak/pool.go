package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bsfs/bsfs/bench/internal/node"
)

// runner is one soak run.
type runner struct {
	cfg      config
	procs    node.Procs
	work     string
	started  time.Time
	deadline time.Time // no operation starts after it

	watched *member
	peers   []*member
	reg     registry
	// gcMu keeps gc on the watched node from running with an add there
	// (see opGC).
	gcMu sync.RWMutex

	mu       sync.Mutex
	counts   map[string]*count
	failures []string
	logs     []string // every daemon's log, one per start

	samples []sample // the sampler's until it returns
	idle    *sample  // after the work
}

// count is how an operation fared.
type count struct{ ok, failed int }

// member is a node of the pool.
type member struct {
	name string
	n    *node.Node
	mnt  string // the watched node's mount
	// up is held for reading by every operation that needs the node
	// running, and for writing while it leaves, is away and comes back:
	// an operation takes it with TryRLock and does without a node that is
	// away. The node's fields change only under the write lock.
	up     sync.RWMutex
	starts int // guarded by up (write)
}

// hold returns whether m is up, keeping it up until release.
func (m *member) hold() bool { return m.up.TryRLock() }

func (m *member) release() { m.up.RUnlock() }

func run(ctx context.Context, cfg config) (ok bool, err error) {
	r := &runner{cfg: cfg, started: time.Now(), counts: map[string]*count{}}
	r.work = cfg.work
	if r.work == "" {
		if r.work, err = os.MkdirTemp("", "bsfs-soak-"); err != nil {
			return false, err
		}
		// Kept, with the daemons' logs, when the run fails.
		defer func() {
			if ok {
				os.RemoveAll(r.work)
			} else {
				r.logf("work directory and logs kept in %s", r.work)
			}
		}()
	}
	defer node.UnmountUnder(r.work)
	defer r.procs.StopAll()
	for _, d := range []string{filepath.Join(r.work, "src"), filepath.Join(r.work, "out"), cfg.profile} {
		if err := os.MkdirAll(d, 0o755); d != "" && err != nil {
			return false, err
		}
	}
	if err := r.startPool(ctx); err != nil {
		return false, err
	}
	r.logf("pool up: watched node and %d peers; %d workers for %v; seed %d", cfg.peers, cfg.workers, cfg.duration, cfg.seed)
	r.deadline = time.Now().Add(cfg.duration)

	var wg sync.WaitGroup
	wg.Go(func() { r.sampler(ctx) })
	for i, m := range r.peers {
		rng := rand.New(rand.NewPCG(cfg.seed, uint64(1000+i)))
		wg.Go(func() { r.churn(ctx, m, rng) })
	}
	for i := range cfg.workers {
		rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)))
		wg.Go(func() { r.worker(ctx, rng) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	bitswap := r.final(ctx)
	r.stopPool()
	return r.finish(bitswap)
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%6.0fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
}

// done records the outcome of an operation.
func (r *runner) done(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counts[op]
	if c == nil {
		c = &count{}
		r.counts[op] = c
	}
	if err == nil {
		c.ok++
		return
	}
	c.failed++
	msg := fmt.Sprintf("%.0fs %s: %s", time.Since(r.started).Seconds(), op, node.OneLine(err.Error()))
	r.failures = append(r.failures, msg)
	fmt.Fprintf(os.Stderr, "%6.0fs  FAILED %s\n", time.Since(r.started).Seconds(), msg[strings.IndexByte(msg, ' ')+1:])
}

// newMember makes a node's repository.
func (r *runner) newMember(ctx context.Context, name string, extra ...string) (*member, error) {
	m := &member{name: name}
	m.n = &node.Node{Impl: node.Bsfs, Bin: r.cfg.bsfs, Dir: filepath.Join(r.work, name), Name: name,
		Extra: slices.Concat([]string{"--routing", "none"}, extra)}
	return m, m.n.InitRepo(ctx)
}

// startPool starts the watched node, mounted, and the peers, all connected.
func (r *runner) startPool(ctx context.Context) error {
	mnt := filepath.Join(r.work, "watched.mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	w, err := r.newMember(ctx, "watched", "--metrics", "127.0.0.1:0", "--cache-size", r.cfg.cacheSize, "--mount", mnt)
	if err != nil {
		return err
	}
	w.mnt = mnt
	if err := r.start(ctx, w); err != nil {
		return err
	}
	// The daemon is ready before its mount is: wait for the mount.
	for i := 0; !node.Mounted(mnt); i++ {
		if i == 300 {
			return fmt.Errorf("the watched node did not mount %s in 30 s", mnt)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.watched = w
	for i := range r.cfg.peers {
		m, err := r.newMember(ctx, fmt.Sprintf("peer%d", i+1), "--metrics", "")
		if err != nil {
			return err
		}
		if err := r.start(ctx, m); err != nil {
			return err
		}
		r.peers = append(r.peers, m)
		if err := r.connect(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// start starts m's daemon, with a log of its own for each start.
func (r *runner) start(ctx context.Context, m *member) error {
	m.starts++
	m.n.Name = fmt.Sprintf("%s-%d", m.name, m.starts)
	if err := m.n.Start(ctx, &r.procs, ""); err != nil {
		return err
	}
	r.mu.Lock()
	r.logs = append(r.logs, m.n.Proc.LogPath())
	r.mu.Unlock()
	return nil
}

// connect connects peer m, which the caller holds, to the watched node and
// to every other peer that is up.
func (r *runner) connect(ctx context.Context, m *member) error {
	errs := []error{m.n.Connect(ctx, r.watched.n)}
	for _, o := range r.peers {
		if o != m && o.hold() {
			errs = append(errs, m.n.Connect(ctx, o.n))
			o.release()
		}
	}
	return errors.Join(errs...)
}

// churn makes peer m leave and come back at random times until the
// deadline. A daemon that died before it was asked to leave, or that
// cannot come back, is a failure; one that cannot come back stays away.
func (r *runner) churn(ctx context.Context, m *member, rng *rand.Rand) {
	for {
		if !r.sleep(ctx, jitter(rng, r.cfg.uptime)) {
			return
		}
		m.up.Lock()
		r.done("leave", m.n.Stop(&r.procs))
		if !r.sleep(ctx, jitter(rng, r.cfg.downtime)) && ctx.Err() != nil {
			m.up.Unlock()
			return
		}
		err := r.start(ctx, m)
		if err == nil {
			err = r.connect(ctx, m)
		}
		r.done("join", err)
		if err != nil {
			return // away for good
		}
		m.up.Unlock()
	}
}

// sleep waits d, or until the deadline or ctx ends; it reports whether the
// deadline is still ahead.
func (r *runner) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(min(d, time.Until(r.deadline)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	return time.Now().Before(r.deadline)
}

// jitter is mean ±50%, uniformly.
func jitter(rng *rand.Rand, mean time.Duration) time.Duration {
	return mean/2 + time.Duration(rng.Int64N(int64(mean)+1))
}

// stopPool stops every daemon; one that had died is a failure.
func (r *runner) stopPool() {
	for _, m := range append([]*member{r.watched}, r.peers...) {
		if !m.up.TryLock() {
			continue // away for good: its churn failed and holds it
		}
		if m.n.Proc != nil {
			r.done("stop", m.n.Stop(&r.procs))
		}
		m.up.Unlock()
	}
}
