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
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
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

	runs, dirRuns, swarmRuns, scaleRuns int
	fileMiB, swarmMiB, scaleGiB         int
	dirFiles, samples, swarmClients     int
	scaleDirFiles                       int
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
	flag.StringVar(&cfg.rows, "rows", "cat,dir,latency,swarm,mount,mountdir,scale", "rows to measure, comma-separated: cat (with the CPU time rows), dir, latency, swarm, mount, mountdir (ls -l fetched through the mounts), scale (bsfs alone at -scale-gib and -scale-dir-files)")
	flag.StringVar(&cfg.profile, "profile", "", "directory for CPU and allocation profiles of the bsfs daemons in the first bsfs→bsfs cat, if the daemon serves /debug/pprof/")
	flag.IntVar(&cfg.runs, "runs", 5, "runs of each pairing for cat, latency and mount, and of the directory rows' cases with bsfs as the client")
	flag.IntVar(&cfg.dirRuns, "dir-runs", 1, "runs of the directory rows' cases with Kubo as the client (~100–200 s a run)")
	flag.IntVar(&cfg.scaleRuns, "scale-runs", 5, "runs of the scale rows")
	flag.IntVar(&cfg.swarmRuns, "swarm-runs", 3, "runs of each pairing for the many-clients case")
	flag.IntVar(&cfg.fileMiB, "file-mib", 256, "size of the big file in MiB")
	flag.IntVar(&cfg.swarmMiB, "swarm-mib", 64, "size of the file the many clients fetch, in MiB")
	flag.IntVar(&cfg.dirFiles, "dir-files", 5000, "files of 4 KiB in the directory")
	flag.IntVar(&cfg.scaleGiB, "scale-gib", 4, "size of the scale rows' big file in GiB")
	flag.IntVar(&cfg.scaleDirFiles, "scale-dir-files", 100000, "files of 4 KiB in the scale rows' big directory")
	flag.IntVar(&cfg.samples, "samples", 50, "block gets per latency run")
	flag.IntVar(&cfg.swarmClients, "swarm-clients", 20, "clients in the many-clients case")
	flag.Parse()
	if cfg.kubo == "" || cfg.bsfs == "" || cfg.memfile == "" {
		fmt.Fprintln(os.Stderr, "compare: -kubo, -bsfs and -memfile are required; run bench/run")
		os.Exit(2)
	}
	if cfg.scaleGiB < 1 || cfg.scaleDirFiles < 1 || cfg.dirFiles < 1 || cfg.fileMiB < 1 {
		fmt.Fprintln(os.Stderr, "compare: -file-mib, -dir-files, -scale-gib and -scale-dir-files must be at least 1")
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
	trashMu   sync.Mutex
	trash     []string // guarded by trashMu: written by the row's runs, deleted at its end (see discard)
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
		"mountdir": r.rowMountDir, "scale": r.rowScale,
	}
	for name := range strings.SplitSeq(cfg.rows, ",") {
		f := rows[strings.TrimSpace(name)]
		if f == nil {
			return fmt.Errorf("unknown row %q", name)
		}
		r.logf("row %s", name)
		f(ctx)
		r.emptyTrash()
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
	binary.LittleEndian.PutUint64(key[:], seed)
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

// routingMode is the bsfs daemons' --routing: "none" like the Kubo nodes,
// unless BSFS_BENCH_ROUTING says otherwise (to measure the DHT's cost).
func routingMode() string {
	if m := os.Getenv("BSFS_BENCH_ROUTING"); m != "" {
		return m
	}
	return "none"
}
