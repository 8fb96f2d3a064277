// Command soak is issue 9's long case: for a set time, a pool of bsfs
// daemons on 127.0.0.1 does mixed work while one of them, the watched
// node, is sampled; its resident memory and goroutine count must level
// off, and no daemon may log an ERROR line. Run it through bench/soak,
// which builds the binary it drives.
//
// The watched node runs `bsfs daemon --mount` for the whole run. The other
// nodes, the peers, leave (SIGTERM) and come back on the same repository
// at random times, and connect again when they do. Workers meanwhile add
// random files and directories on random nodes, fetch on the watched node
// what others added (`cat`, `get`, whole and ranged reads through its
// mount, `block get` and `block stat`), have peers fetch from each other
// and from the watched node, list the mount, and collect garbage. Every
// byte fetched is checked against what was added. The watched node's RSS,
// heap, goroutines and open files are sampled all along.
//
// At the end it prints the samples, the operation counts and failures and
// the daemons' ERROR and WARN lines, writes them as Markdown, and exits
// non-zero when an operation or check failed, a daemon died or logged an
// ERROR line, or the last minute's median RSS or goroutine count grew
// over the second minute's by more than the flags allow.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	bsfs, version, command, out, work, profile string

	duration, sample, opTimeout, uptime, downtime time.Duration

	peers, workers int
	seed           uint64
	cacheSize      string

	maxGoroutineGrowth, maxRSSGrowth float64
	gcDuringAdds                     bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.bsfs, "bsfs", "", "the bsfs binary")
	flag.StringVar(&cfg.version, "bsfs-version", "unknown", "the bsfs commit, for the results")
	flag.StringVar(&cfg.command, "command", "", "the command line, for the results")
	flag.StringVar(&cfg.out, "out", "bench/SOAK.md", `where to write the results ("" for nowhere)`)
	flag.StringVar(&cfg.work, "work", "", "work directory (default: a new temporary directory, removed at the end of a run that passed)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Minute, "how long the work goes on")
	flag.DurationVar(&cfg.sample, "sample", 10*time.Second, "how often the watched node is sampled")
	flag.DurationVar(&cfg.opTimeout, "op-timeout", 2*time.Minute, "an operation not done by then has failed (hung)")
	flag.DurationVar(&cfg.uptime, "uptime", 40*time.Second, "mean time a peer stays up before it leaves (uniform within ±50%)")
	flag.DurationVar(&cfg.downtime, "downtime", 10*time.Second, "mean time a peer stays away (uniform within ±50%)")
	flag.IntVar(&cfg.peers, "peers", 4, "peers besides the watched node, each leaving and coming back")
	flag.IntVar(&cfg.workers, "workers", 3, "operations run at a time")
	flag.Uint64Var(&cfg.seed, "seed", 0, "seed of the random choices and contents (0: from the clock); printed")
	flag.StringVar(&cfg.cacheSize, "cache-size", "256MiB", "the watched node's --cache-size, so that what it fetches gets evicted")
	flag.Float64Var(&cfg.maxGoroutineGrowth, "max-goroutine-growth", 1.5, "the most the last minute's median goroutine count may be over the second minute's, as a factor")
	flag.Float64Var(&cfg.maxRSSGrowth, "max-rss-growth", 1.5, "the most the last minute's median RSS may be over the second minute's, as a factor")
	flag.BoolVar(&cfg.gcDuringAdds, "gc-during-adds", false, "let gc on the watched node run while an add runs there (an add then loses its blocks and hangs: off until that is fixed)")
	flag.StringVar(&cfg.profile, "profile", "", "directory for the watched node's goroutines and heap profiles at two minutes, at the end of the work and after it")
	flag.Parse()
	if cfg.bsfs == "" || cfg.peers < 1 || cfg.workers < 1 || cfg.duration <= 0 || cfg.sample <= 0 {
		fmt.Fprintln(os.Stderr, "soak: -bsfs is required; -peers, -workers, -duration and -sample must be positive; run bench/soak")
		os.Exit(2)
	}
	if cfg.seed == 0 {
		cfg.seed = rand.Uint64()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "soak: FAILED")
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "soak: passed")
}
