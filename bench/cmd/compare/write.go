package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/bsfs/bsfs/bench/internal/node"
)

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
	r.writeHeader(w)
	fmt.Fprintf(w, "\n## Fetches between two daemons\n\n")
	base := pairings[0].String()
	r.res.writeTable(w, tablePairs, []string{pairings[0].String(), pairings[1].String(), pairings[2].String(), pairings[3].String()},
		[]ratio{
			{title: "bsfs→bsfs ÷ Kubo→Kubo", col: pairings[1].String(), base: base},
			{title: "as client: Kubo→bsfs ÷ Kubo→Kubo", col: pairings[2].String(), base: base},
			{title: "as server: bsfs→Kubo ÷ Kubo→Kubo", col: pairings[3].String(), base: base},
		})
	fmt.Fprintf(w, `
## Through FUSE mounts

Each mount is served by the process that runs the node: Kubo's is
`+"`ipfs daemon --mount`"+`, bsfs's is `+"`bsfs mount`"+` running its own node (not the
mount through a daemon's API). "Fetched" reads through a fresh client's
mount connected to a server holding the file or directory (for bsfs, a
daemon that dials the client's `+"`bsfs mount`"+`); "local" reads the same file
again once its blocks are stored, after `+"`echo 3 > /proc/sys/vm/drop_caches`"+`;
the local `+"`ls -l`"+` lists the directory through the server's mount (for bsfs,
`+"`bsfs mount`"+` started on the server's repository in place of its daemon),
caches dropped. The go-fuse file is bench/cmd/memfile: the same sizes served
from memory by a minimal go-fuse file system, the ceiling of a FUSE read on
this machine; "synchronous reads" is the same with the kernel sending one
read at a time per file (go-fuse's SyncRead), the mode bsfs's mount runs in
so that Ctrl-C cancels a read and its wants (fs/doc.go, Interrupts): the
ceiling of a read through bsfs's mount.%s

`, dropNote(r.dropErr))
	r.res.writeTable(w, tableMounts, []string{colKuboMount, colBsfsMount, colMemfile, colMemfileSync},
		[]ratio{{title: "bsfs ÷ Kubo", col: colBsfsMount, base: colKuboMount}, {title: "bsfs ÷ go-fuse file", col: colBsfsMount, base: colMemfile},
			{title: "bsfs ÷ go-fuse file, synchronous reads", col: colBsfsMount, base: colMemfileSync}})
	if r.res.has(tableScale) {
		r.writeScale(w)
	}
	r.res.writeErrors(w)
	fmt.Fprintf(w, microBenchmarks, profileSeconds)
}

// writeHeader writes the title and the notes that hold for every table.
func (r *runner) writeHeader(w io.Writer) {
	kuboVersion, _ := node.RunCmd(context.Background(), nil, r.cfg.kubo, "version")
	fmt.Fprintf(w, `# bsfs against Kubo, side by side

Measured by `+"`%s`"+` on %s, in %v.

- Machine: %s. Shared with other work: read the
  ratios, not the absolute numbers.
- Versions: bsfs %s, %s, %s.
- Each cell is the median of the runs, with their range: `+"`median (min–max)`"+`.
  Runs alternate the pairings (server→client) so that drift hits all alike.
  Runs of each: %d for `+"`cat`"+`, `+"`block get`"+`, the mounts, and the directory
  rows' cases with bsfs as the client; only %d for the directory rows' cases
  with Kubo as the client (`+"`get`"+` by a Kubo client, `+"`ls -l`"+` fetched through
  Kubo's mount), which take 100–200 s a run at 5000 files (one block after
  another): their cells and the ratios over them rest on that many samples;
  %d for the many clients.
  MB is 10^6 bytes.
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
- The CPU time of the `+"`cat`"+`, per GiB transferred, counts each daemon's user
  and system time over all its threads (utime + stime of /proc/PID/stat, in
  10 ms ticks) from just before the command line starts to just after it
  exits, and the command line's own user and system time (its rusage; it
  starts no other process). Work a daemon does after that is not counted;
  the kernel's loopback TCP work counts in whichever process it runs.%s
- Kubo's Bitswap client waits at least 20 ms after each message to a peer,
  which caps block-after-block fetches (the directory) near 50 messages/s.
- The "file-system floor" rows: right after each run, one plain loop
  writes files of the same number and sizes as the client had to create (the fetched blocks over 1024 shard directories, and
  for `+"`get`"+` its output files too): created, written, closed, no fsync, one
  after another. Creating a file costs more here than on most machines:
  this ext4 has no journal, and then allocating an inode skips each inode
  freed in the last minutes by reading its table entry. So that no run
  pays for the deletion of the one before, what the runs write (clients'
  repositories, `+"`get`"+`'s output, the floors' files) is deleted only at
  the end of each row; a row's first runs may still meet the previous
  row's deletion. A fetch that stores each block as a file cannot beat its
  floor by more than the parallelism of the file system; its ratio to the
  floor says how much of the time is spent elsewhere.
- "Cores busy" is the `+"`cat`"+`'s CPU time, all three processes, over its wall
  time: near the machine's cores, the transfer is bound by the CPU.
- `+"`version`"+` runs the client's command line with nothing to do: the start-up
  every command line row pays (the Go runtime and the initialisation of
  every package linked in), measured in the same runs.
`, r.cfg.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.started).Round(time.Second),
		node.Machine(),
		r.cfg.bsfsVersion, strings.TrimSpace(string(kuboVersion)), runtime.Version(),
		r.cfg.runs, r.cfg.dirRuns, r.cfg.swarmRuns, strings.Join(quoteArgs(r.bsfsFlags), " "), r.data.bsfsSource,
		profileNote(r.cfg.profile))
}

// writeScale writes the table of the scale rows and its notes.
func (r *runner) writeScale(w io.Writer) {
	fmt.Fprintf(w, `
## How bsfs's costs grow with the work (bsfs alone)

A bsfs daemon serves a repository of its own holding the %d MiB file, the
%d-entry directory, a %d GiB file (its bytes generated as `+"`bsfs add -`"+` reads
them) and a directory of %d files of 4 KiB (written to a temporary tree and
added). The rows are skipped if the work directory's disk lacks the room
for the server's copy and each run's client's; these and the tree are
deleted at the end of the rows. Each measure reads through a fresh
client's `+"`bsfs mount`"+`, dialed by the server, so that the mount's VmHWM (its
peak resident memory since it started) is that one read's; the cache
is not dropped, as every block is new to the client. Runs: %d, the order of
the four measures turning from run to run. The targets: the big read's peak
memory at most the small read's plus %d MiB, and the big directory's time
per entry at most %.1f times the small one's; "÷ target" divides the medians,
✓ marks a target met, ✗ one missed. Both adds shard a directory as a HAMT
once its links pass Kubo's threshold (256 KiB): at the default sizes the
5000-entry directory is one block, the 100,000-entry one a HAMT.

`, r.cfg.fileMiB, r.cfg.dirFiles, r.cfg.scaleGiB, r.cfg.scaleDirFiles, r.cfg.scaleRuns, memSlack>>20, lsSlack)
	r.res.writeTable(w, tableScale, []string{colBsfsMount, colTarget},
		[]ratio{{title: "÷ target", col: colBsfsMount, base: colTarget, target: true}})
}

// profileNote says which run the CPU rows leave out when profiling.
func profileNote(dir string) string {
	if dir == "" {
		return ""
	}
	return "\n  The profiled bsfs→bsfs run (-profile) is left out of the CPU rows."
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
exchange/message (Marshal, Unmarshal, Size, WriteFrames), exchange/wantlist (Wantlist),
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
