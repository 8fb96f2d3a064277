// Command swarm is issue 9's load case: one bsfs server holding a file and
// many fresh bsfs clients fetching it at once. Every client must get the
// whole file, byte for byte, and the slowest client's time over the
// fastest's must stay within a bound. Run it through bench/swarm, which
// builds the binary it drives.
//
// Each round starts the server daemon on its prepared repository and
// fresh client daemons, all on 127.0.0.1, connects every client to the
// server (and with -mesh to each other), then starts `bsfs cat CID` on
// every client at the same moment and checks the SHA-256 of what each one
// writes. It prints each client's time and the ratio, writes the results
// as Markdown, and exits non-zero when a client failed, a ratio was over
// -max-ratio, or a daemon logged an ERROR line.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bsfs/bsfs/bench/internal/node"
)

// config is the command line.
type config struct {
	bsfs, version, command, out, work string

	clients, mib, rounds, startJobs int
	maxRatio                        float64
	routing                         string
	mesh                            bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.bsfs, "bsfs", "", "the bsfs binary")
	flag.StringVar(&cfg.version, "bsfs-version", "unknown", "the bsfs commit, for the results")
	flag.StringVar(&cfg.command, "command", "", "the command line, for the results")
	flag.StringVar(&cfg.out, "out", "bench/SWARM.md", `where to write the results ("" for nowhere)`)
	flag.StringVar(&cfg.work, "work", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.IntVar(&cfg.clients, "clients", 20, "client daemons")
	flag.IntVar(&cfg.mib, "mib", 64, "size of the file in MiB")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds, each with fresh clients")
	flag.IntVar(&cfg.startJobs, "start-jobs", 4, "client daemons started at a time")
	flag.Float64Var(&cfg.maxRatio, "max-ratio", 1.5, "the most the slowest client's time may be over the fastest's")
	flag.StringVar(&cfg.routing, "routing", "none", `the daemons' --routing: "none", or "dht" for the DHT over the daemons' connections`)
	flag.BoolVar(&cfg.mesh, "mesh", false, "connect every client to every other client too, not only to the server")
	flag.Parse()
	if cfg.bsfs == "" || cfg.clients < 1 || cfg.rounds < 1 || cfg.mib < 1 {
		fmt.Fprintln(os.Stderr, "swarm: -bsfs is required and -clients, -rounds, -mib must be positive; run bench/swarm")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swarm: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "swarm: FAILED")
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "swarm: passed")
}

// runner is one run of all rounds.
type runner struct {
	cfg     config
	procs   node.Procs
	work    string
	started time.Time
	size    int64
	sum     [sha256.Size]byte
	cid     string
	server  string // the server's repository
	flags   []string
	rounds  []round
	logs    []string // every daemon's log
}

// round is what one round measured.
type round struct {
	times     []time.Duration // per client; 0 when it failed
	errs      []string
	wall      time.Duration
	serverRSS int64  // the server's peak, bytes
	sent      uint64 // bytes the server sent
	dup       uint64 // duplicate bytes the clients received
}

func run(ctx context.Context, cfg config) (ok bool, err error) {
	r := &runner{cfg: cfg, started: time.Now(), size: int64(cfg.mib) << 20}
	r.work = cfg.work
	if r.work == "" {
		if r.work, err = os.MkdirTemp("", "bsfs-swarm-"); err != nil {
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
	defer r.procs.StopAll()
	r.flags = []string{"--routing", cfg.routing}
	if err := r.prepare(ctx); err != nil {
		return false, fmt.Errorf("preparing the server: %w", err)
	}
	for i := range cfg.rounds {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		rd, err := r.round(ctx, i)
		if err != nil {
			rd.errs = append(rd.errs, err.Error())
		}
		r.rounds = append(r.rounds, rd)
		r.logf("round %d: %s", i+1, rd.summary(cfg.maxRatio))
		for _, e := range rd.errs {
			r.logf("round %d: %s", i+1, e)
		}
	}
	problems, err := r.scanLogs()
	if err != nil {
		return false, err
	}
	ok = problems.errors == 0
	for _, rd := range r.rounds {
		ok = ok && rd.passed(cfg.maxRatio)
	}
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(r.report(problems, ok)), 0o644); err != nil {
			return false, err
		}
		r.logf("wrote %s", cfg.out)
	}
	return ok, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%6.0fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
}

// prepare writes the file and adds it to the server's repository, before
// its daemon runs.
func (r *runner) prepare(ctx context.Context) error {
	srv := r.node("server")
	if err := srv.InitRepo(ctx); err != nil {
		return err
	}
	r.server = srv.Dir
	path := filepath.Join(r.work, "file")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8([32]byte{'s', 'w', 'a', 'r', 'm'}), r.size)
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	h.Sum(r.sum[:0])
	out, err := srv.CLI(ctx, srv.AddArgs(path)...)
	if err != nil {
		return err
	}
	r.cid = strings.TrimSpace(string(out))
	r.logf("server holds %d MiB as %s; %d clients, %d rounds, daemons with %q", r.cfg.mib, r.cid, r.cfg.clients, r.cfg.rounds, r.flags)
	return os.Remove(path)
}

// node is a bsfs node named name in the work directory.
func (r *runner) node(name string) *node.Node {
	return &node.Node{Impl: node.Bsfs, Bin: r.cfg.bsfs, Dir: filepath.Join(r.work, name), Name: name}
}

// round runs one round: the server, fresh clients, all fetching at once.
func (r *runner) round(ctx context.Context, i int) (rd round, err error) {
	n := r.cfg.clients
	rd.times = make([]time.Duration, n)
	srv := r.node(fmt.Sprintf("server-%d", i+1))
	srv.Dir = r.server
	// Metrics (and pprof) on a port of the server's own, to look into it.
	srv.Extra = slices.Concat(r.flags, []string{"--metrics", "127.0.0.1:0"})
	if err := srv.Start(ctx, &r.procs, ""); err != nil {
		return rd, err
	}
	r.logs = append(r.logs, srv.Proc.LogPath())
	defer func() { err = errors.Join(err, srv.Stop(&r.procs)) }()

	clients := make([]*node.Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(r.cfg.startJobs, 1))
	for j := range clients {
		c := r.node(fmt.Sprintf("client-%d-%02d", i+1, j+1))
		c.Extra = slices.Concat(r.flags, []string{"--metrics", ""})
		clients[j] = c
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if errs[j] = c.InitRepo(ctx); errs[j] == nil {
				if errs[j] = c.Start(ctx, &r.procs, ""); errs[j] == nil {
					errs[j] = c.Connect(ctx, srv)
				}
			}
		})
	}
	wg.Wait()
	defer func() {
		var mu sync.Mutex
		for _, c := range clients {
			wg.Go(func() {
				if c.Proc == nil {
					return
				}
				log := c.Proc.LogPath()
				e := c.Stop(&r.procs)
				mu.Lock()
				r.logs = append(r.logs, log)
				err = errors.Join(err, e)
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, c := range clients {
			os.RemoveAll(c.Dir)
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return rd, err
	}
	if r.cfg.mesh {
		for j, a := range clients {
			for _, b := range clients[j+1:] {
				if err := a.Connect(ctx, b); err != nil {
					return rd, err
				}
			}
		}
	}

	// Every cat starts at the same moment: the goroutines wait for go.
	start := make(chan struct{})
	for j, c := range clients {
		wg.Go(func() {
			<-start
			h := sha256.New()
			d, got, err := node.TimedCopy(ctx, h, c.Env(), c.Bin, c.CatArgs(r.cid)...)
			switch {
			case err != nil:
			case got != r.size:
				err = fmt.Errorf("cat wrote %d bytes, want %d", got, r.size)
			case [sha256.Size]byte(h.Sum(nil)) != r.sum:
				err = errors.New("cat wrote other bytes than the file's")
			}
			if err != nil {
				errs[j] = fmt.Errorf("%s: %w", c.Name, err)
				return
			}
			rd.times[j] = d
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	rd.wall = time.Since(t0)
	for _, e := range errs {
		if e != nil {
			rd.errs = append(rd.errs, e.Error())
		}
	}
	if rd.serverRSS, err = srv.Proc.PeakRSS(); err != nil {
		return rd, err
	}
	st, err := bsfsStat(ctx, srv)
	if err != nil {
		return rd, err
	}
	rd.sent = st["data sent"]
	for _, c := range clients {
		st, err := bsfsStat(ctx, c)
		if err != nil {
			return rd, err
		}
		rd.dup += st["dup data received"]
	}
	return rd, nil
}

// bsfsStat returns the figures `bsfs stat` prints for n.
func bsfsStat(ctx context.Context, n *node.Node) (map[string]uint64, error) {
	out, err := n.CLI(ctx, "stat")
	if err != nil {
		return nil, err
	}
	return parseStat(string(out)), nil
}

// parseStat reads the "name: number" lines of `bsfs stat`.
func parseStat(out string) map[string]uint64 {
	m := map[string]uint64{}
	for line := range strings.SplitSeq(out, "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var n uint64
		if _, err := fmt.Sscan(strings.TrimSpace(v), &n); err == nil {
			m[strings.TrimSpace(name)] = n
		}
	}
	return m
}

// problems are the ERROR and WARN lines of the daemons' logs.
type problems struct {
	errors int
	lines  []string // "log: line", ERROR lines first
}

// scanLogs collects the ERROR and WARN lines of every daemon's log.
func (r *runner) scanLogs() (problems, error) {
	var p problems
	var warns []string
	for _, path := range r.logs {
		errs, ws, err := node.ScanLog(path)
		if err != nil {
			return p, err
		}
		for _, l := range errs {
			p.lines = append(p.lines, filepath.Base(path)+": "+l)
		}
		for _, l := range ws {
			warns = append(warns, filepath.Base(path)+": "+l)
		}
		p.errors += len(errs)
	}
	p.lines = append(p.lines, warns...)
	for _, l := range p.lines {
		r.logf("log: %s", l)
	}
	return p, nil
}
