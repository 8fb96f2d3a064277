// Command compare measures bsfs against Kubo on this machine, in one run,
// and writes the results as a Markdown table of ratios. Run it through
// bench/run, which builds the binaries it drives.
//
// For each pairing of server and client (Kubo→Kubo, bsfs→bsfs, Kubo→bsfs,
// bsfs→Kubo) it starts two daemons on 127.0.0.1, connects the client to
// the server and measures a fetch, alternating the pairings from run to
// run so that the machine's drift hits them alike. Every daemon is stopped
// on exit, on error and on Ctrl-C.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/bench/internal/node"
)

// config is the command line.
type config struct {
	kubo, bsfs, memfile string // binaries
	bsfsVersion         string
	command             string // as recorded in the results
	out                 string
	work                string
	rows                string
	profile             string

	runs, dirRuns, swarmRuns        int
	fileMiB, swarmMiB               int
	dirFiles, samples, swarmClients int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.kubo, "kubo", "", "the ipfs binary (Kubo v0.42.0)")
	flag.StringVar(&cfg.bsfs, "bsfs", "", "the bsfs binary")
	flag.StringVar(&cfg.memfile, "memfile", "", "the memfile binary (bench/cmd/memfile)")
	flag.StringVar(&cfg.bsfsVersion, "bsfs-version", "unknown", "the bsfs commit, for the results")
	flag.StringVar(&cfg.command, "command", "", "the command line, for the results")
	flag.StringVar(&cfg.out, "out", "bench/RESULTS.md", "where to write the results")
	flag.StringVar(&cfg.work, "work", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.StringVar(&cfg.rows, "rows", "cat,dir,latency,swarm,mount", "rows to measure, comma-separated")
	flag.StringVar(&cfg.profile, "profile", "", "directory for CPU and allocation profiles of the bsfs daemons in the first bsfs→bsfs cat, if the daemon serves /debug/pprof/")
	flag.IntVar(&cfg.runs, "runs", 3, "runs of each pairing for cat, latency and mount")
	flag.IntVar(&cfg.dirRuns, "dir-runs", 1, "runs of each pairing for the directory (Kubo takes ~100 s a run)")
	flag.IntVar(&cfg.swarmRuns, "swarm-runs", 3, "runs of each pairing for the many-clients case")
	flag.IntVar(&cfg.fileMiB, "file-mib", 256, "size of the big file in MiB")
	flag.IntVar(&cfg.swarmMiB, "swarm-mib", 64, "size of the file the many clients fetch, in MiB")
	flag.IntVar(&cfg.dirFiles, "dir-files", 5000, "files of 4 KiB in the directory")
	flag.IntVar(&cfg.samples, "samples", 50, "block gets per latency run")
	flag.IntVar(&cfg.swarmClients, "swarm-clients", 20, "clients in the many-clients case")
	flag.Parse()
	if cfg.kubo == "" || cfg.bsfs == "" || cfg.memfile == "" {
		fmt.Fprintln(os.Stderr, "compare: -kubo, -bsfs and -memfile are required; run bench/run")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		os.Exit(1)
	}
}

// runner is one benchmark run.
type runner struct {
	cfg     config
	procs   *node.Procs
	work    string
	seq     int
	bsfsHas map[string]bool
	// bsfsFlags are given to every bsfs daemon and mount.
	bsfsFlags []string
	data      dataset
	res       results
	dropErr   error
	started   time.Time
}

// dataset is what the servers hold.
type dataset struct {
	big, swarm, dir cid.Cid
	dirBlocks       int
	server          map[impl]string // prepared repositories
	bsfsSource      string          // how the bsfs server got its blocks
}

func run(ctx context.Context, cfg config) error {
	r := &runner{cfg: cfg, procs: &node.Procs{}, started: time.Now()}
	r.work = cfg.work
	if r.work == "" {
		dir, err := os.MkdirTemp("", "bsfs-bench-")
		if err != nil {
			return err
		}
		r.work = dir
		defer os.RemoveAll(dir)
	}
	defer func() {
		r.procs.StopAll()
		node.UnmountUnder(r.work)
	}()

	r.bsfsHas = map[string]bool{}
	probe := &node.Node{Impl: bsfs, Bin: cfg.bsfs, Dir: filepath.Join(r.work, "probe")}
	for _, c := range []string{"add", "cat", "get", "mount"} {
		r.bsfsHas[c] = probe.HasCommand(ctx, c)
	}
	// Like the Kubo nodes: no DHT. Metrics only where profiles are wanted,
	// on a port of their own.
	help, _ := probe.CLI(ctx, "daemon", "--help")
	if strings.Contains(string(help), "--routing") {
		r.bsfsFlags = append(r.bsfsFlags, "--routing", routingMode())
	}
	if strings.Contains(string(help), "--metrics") {
		addr := ""
		if cfg.profile != "" {
			addr = "127.0.0.1:0"
		}
		r.bsfsFlags = append(r.bsfsFlags, "--metrics", addr)
	}
	r.logf("bsfs has: %v; bsfs daemon flags %q; work directory %s", r.bsfsHas, r.bsfsFlags, r.work)

	if err := r.prepare(ctx); err != nil {
		return fmt.Errorf("preparing the data sets: %w", err)
	}
	rows := map[string]func(context.Context){
		"cat": r.rowCat, "dir": r.rowDir, "latency": r.rowLatency, "swarm": r.rowSwarm, "mount": r.rowMount,
	}
	for name := range strings.SplitSeq(cfg.rows, ",") {
		f := rows[strings.TrimSpace(name)]
		if f == nil {
			return fmt.Errorf("unknown row %q", name)
		}
		r.logf("row %s", name)
		f(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.write(); err != nil { // partial results survive a later failure
			return err
		}
	}
	r.logf("wrote %s in %v", cfg.out, time.Since(r.started).Round(time.Second))
	return nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%6.0fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
}

// extra returns the flags for im's daemons.
func (r *runner) extra(im impl) []string {
	if im == bsfs {
		return r.bsfsFlags
	}
	return nil
}

func (r *runner) bin(im impl) string {
	if im == kubo {
		return r.cfg.kubo
	}
	return r.cfg.bsfs
}

// prepare writes the data sets, adds them to a Kubo repository and gives
// the bsfs server the same blocks, all before any daemon runs.
func (r *runner) prepare(ctx context.Context) error {
	data := filepath.Join(r.work, "data")
	big, swarm, dir := filepath.Join(data, "big"), filepath.Join(data, "swarm"), filepath.Join(data, "dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeRandom(big, int64(r.cfg.fileMiB)<<20, 1); err != nil {
		return err
	}
	if err := writeRandom(swarm, int64(r.cfg.swarmMiB)<<20, 2); err != nil {
		return err
	}
	for i := range r.cfg.dirFiles {
		if err := writeRandom(filepath.Join(dir, fmt.Sprintf("f%05d", i)), 4096, uint64(10+i)); err != nil {
			return err
		}
	}
	r.data.server = map[impl]string{}
	cids := map[impl][]cid.Cid{}
	for _, im := range []impl{kubo, bsfs} {
		n, err := r.newNode(ctx, im, "server")
		if err != nil {
			return err
		}
		r.data.server[im] = n.Dir
		if im == bsfs && !r.bsfsHas["add"] {
			continue
		}
		for _, path := range []string{big, swarm, dir} {
			out, err := n.CLI(ctx, n.AddArgs(path)...)
			if err != nil {
				return err
			}
			f := strings.Fields(string(out))
			if len(f) == 0 {
				return fmt.Errorf("%s add printed nothing", im)
			}
			c, err := cid.Decode(f[len(f)-1])
			if err != nil {
				return fmt.Errorf("%s add: %w", im, err)
			}
			cids[im] = append(cids[im], c)
		}
	}
	k := cids[kubo]
	r.data.big, r.data.swarm, r.data.dir = k[0], k[1], k[2]
	switch b := cids[bsfs]; {
	case b == nil:
		r.data.bsfsSource = "copied from the Kubo server's blockstore (this bsfs has no `add`)"
	case fmt.Sprint(b) != fmt.Sprint(k):
		r.data.bsfsSource = fmt.Sprintf("copied from the Kubo server's blockstore: `bsfs add` gave other CIDs (%v) than `ipfs add --cid-version=1` (%v)", b, k)
	default:
		r.data.bsfsSource = "`bsfs add`, the same CIDs as `ipfs add --cid-version=1`"
	}
	if !strings.HasPrefix(r.data.bsfsSource, "`bsfs add`") {
		if err := copyBlocks(filepath.Join(r.data.server[kubo], "blocks"), filepath.Join(r.data.server[bsfs], "blocks")); err != nil {
			return err
		}
	}
	r.logf("bsfs server's blocks: %s", r.data.bsfsSource)
	kn := &node.Node{Impl: kubo, Bin: r.cfg.kubo, Dir: r.data.server[kubo]}
	out, err := kn.CLI(ctx, "refs", "-r", "--unique", r.data.dir.String())
	if err != nil {
		return err
	}
	r.data.dirBlocks = len(strings.Fields(string(out))) + 1
	return nil
}

// writeRandom writes size pseudo-random bytes, the same for a seed.
func writeRandom(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	if _, err := io.CopyN(f, rand.NewChaCha8(key), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyBlocks copies the block files of a Kubo flatfs directory into a bsfs
// one; both use the same layout and keys.
func copyBlocks(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".data") {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, raw, 0o644)
	})
}

// write writes the results file.
func (r *runner) write() error {
	f, err := os.Create(r.cfg.out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	r.writeResults(w)
	return errors.Join(w.Flush(), f.Close())
}

func (r *runner) writeResults(w io.Writer) {
	kuboVersion, _ := node.RunCmd(context.Background(), nil, r.cfg.kubo, "version")
	fmt.Fprintf(w, `# bsfs against Kubo, side by side

Measured by `+"`%s`"+` on %s, in %v.

- Machine: %s. Shared with other work: read the
  ratios, not the absolute numbers.
- Versions: bsfs %s, %s, %s.
- Each cell is the median of the runs, with their range: `+"`median (min–max)`"+`.
  Runs alternate the pairings (server→client) so that drift hits all alike:
  runs of each: %d for cat, block get and the mounts, %d for the directory,
  %d for the many clients. MB is 10^6 bytes.
- Every node is a fresh daemon on 127.0.0.1, connected over TCP (Kubo
  listens on TCP only); the servers restart for each run from a repository
  prepared before, the clients start empty. Kubo is configured like the test
  peers (`+"`ipfs init --profile=test`"+`, no routing, no bootstrap, no MDNS);
  bsfs daemons and mounts run with `+"`%s`"+`.
- Like with like: neither writes blocks with fsync. Kubo's test profile sets
  flatfs `+"`\"sync\": false`"+` (Kubo's default profile syncs); bsfs never syncs blocks.
- The bsfs server's blocks: %s.
- Ratios divide medians; ▲ marks bsfs better by more than 5%%, ▼ worse.
  "bsfs→bsfs ÷ Kubo→Kubo" compares the whole systems; "as client" and
  "as server" replace one side of Kubo→Kubo by bsfs.
- `+"`cat`"+` and `+"`get`"+` are the command lines (`+"`ipfs cat`"+`, `+"`bsfs cat`"+`), output
  counted and thrown away. A command line adds its own start-up to what it
  measures; the API row of `+"`block get`"+` leaves it out (Kubo's RPC over TCP,
  bsfs's local API over its unix socket): the difference of the two rows is
  the cost of the command line.
- Kubo's Bitswap client waits at least 20 ms after each message to a peer,
  which caps block-after-block fetches (the directory) near 50 messages/s.

## Fetches between two daemons

`, r.cfg.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.started).Round(time.Second),
		node.Machine(),
		r.cfg.bsfsVersion, strings.TrimSpace(string(kuboVersion)), runtime.Version(),
		r.cfg.runs, r.cfg.dirRuns, r.cfg.swarmRuns, strings.Join(quoteArgs(r.bsfsFlags), " "), r.data.bsfsSource)
	base := pairings[0].String()
	r.res.writeTable(w, tablePairs, []string{pairings[0].String(), pairings[1].String(), pairings[2].String(), pairings[3].String()},
		[]ratio{
			{"bsfs→bsfs ÷ Kubo→Kubo", pairings[1].String(), base},
			{"as client: Kubo→bsfs ÷ Kubo→Kubo", pairings[2].String(), base},
			{"as server: bsfs→Kubo ÷ Kubo→Kubo", pairings[3].String(), base},
		})
	fmt.Fprintf(w, `
## Through FUSE mounts

Each mount is served by the process that runs the node: Kubo's is
`+"`ipfs daemon --mount`"+`, bsfs's is `+"`bsfs mount`"+` running its own node (not the
mount through a daemon's API). "Fetched" reads through a fresh client's
mount connected to a server holding the file; "local" reads the same file
again once its blocks are stored, after `+"`echo 3 > /proc/sys/vm/drop_caches`"+`;
`+"`ls -l`"+` lists the directory through the server's mount (for bsfs, `+"`bsfs mount`"+`
started on the server's repository in place of its daemon), caches dropped.
The go-fuse file is bench/cmd/memfile: the same sizes served from memory by
a minimal go-fuse file system, the ceiling of a FUSE read on this machine.%s

`, dropNote(r.dropErr))
	r.res.writeTable(w, tableMounts, []string{colKuboMount, colBsfsMount, colMemfile},
		[]ratio{{"bsfs ÷ Kubo", colBsfsMount, colKuboMount}, {"bsfs ÷ go-fuse file", colBsfsMount, colMemfile}})
	r.res.writeErrors(w)
	fmt.Fprintf(w, microBenchmarks, profileSeconds)
}

// quoteArgs quotes the empty arguments for printing.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" {
			out[i] = `""`
		}
	}
	return out
}

func dropNote(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf(" The caches could not be dropped here (%v): the local rows read from the page cache.", err)
}

// microBenchmarks is the part of the results about the Go benchmarks.
const microBenchmarks = `
## Go micro-benchmarks

The packages carry their own benchmarks; this script does not repeat them:
exchange/message (Marshal, Unmarshal, Size), exchange/wantlist (Wantlist),
exchange/decision (TaskQueue, Serve), exchange (Fetch64MiBFromBsfs,
Fetch64MiBFromKubo: 64 MiB in 256 KiB blocks over loopback TCP, the second
from a real Kubo; SessionPeers), exchange/routing (FindProviders, Provide),
blockstore (Put, Get), unixfs (ReadAtSequentialLocal, CatFromPeer) and fs
(Cat64MiB, Cat64MiBFetched, through a real mount). To compare two commits
with benchstat (golang.org/x/perf/cmd/benchstat), from a clean tree:

` + "```sh" + `
pkgs="./exchange/... ./blockstore ./unixfs ./fs"
git checkout OLD
go test -run '^$' -bench . -benchmem -count 10 $pkgs > old.txt
git checkout -
go test -run '^$' -bench . -benchmem -count 10 $pkgs > new.txt
benchstat old.txt new.txt
` + "```" + `

## Profiles

When bsfs is slower on a row, profile it. The exchange's benchmarks profile
the fetch path in-process:

` + "```sh" + `
go test -run '^$' -bench Fetch64MiBFromKubo -cpuprofile cpu.out -memprofile mem.out ./exchange
go tool pprof -top exchange.test cpu.out
` + "```" + `

With ` + "`-profile DIR`" + `, bench/run also takes a CPU profile and an allocation
profile of both bsfs daemons during the first bsfs→bsfs ` + "`cat`" + ` and of the
server during the first bsfs→bsfs many-clients run (the first %d seconds), from
the daemon's ` + "`/debug/pprof/`" + ` (its metrics listener, ` + "`--metrics 127.0.0.1:0`" + `).
`

// routingMode is the bsfs daemons' --routing: "none" like the Kubo nodes,
// unless BSFS_BENCH_ROUTING says otherwise (to measure the DHT's cost).
func routingMode() string {
	if m := os.Getenv("BSFS_BENCH_ROUTING"); m != "" {
		return m
	}
	return "none"
}
