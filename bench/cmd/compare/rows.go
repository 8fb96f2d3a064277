package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/bench/internal/node"
	"github.com/bsfs/bsfs/bench/internal/stat"
)

// impl, kubo and bsfs name the implementations.
type impl = node.Impl

const (
	kubo = node.Kubo
	bsfs = node.Bsfs
)

// pairing is a server and a client; the client fetches from the server.
type pairing struct{ server, client impl }

func (p pairing) String() string { return fmt.Sprintf("%s→%s", p.server, p.client) }

// pairings, in the order of the table's columns.
var pairings = []pairing{{kubo, kubo}, {bsfs, bsfs}, {kubo, bsfs}, {bsfs, kubo}}

// rotate returns s starting at its i-th element, so that successive runs
// change which case goes first and drift hits all alike.
func rotate[T any](s []T, i int) []T {
	i %= len(s)
	return append(slices.Clone(s[i:]), s[:i]...)
}

// newNode makes a fresh repository.
func (r *runner) newNode(ctx context.Context, im impl, role string) (*node.Node, error) {
	r.seq++
	name := fmt.Sprintf("%s-%s-%d", im, role, r.seq)
	n := &node.Node{Impl: im, Bin: r.bin(im), Dir: filepath.Join(r.work, name), Name: name, Extra: r.extra(im)}
	return n, n.InitRepo(ctx)
}

// serverNode is the prepared repository holding the data sets.
func (r *runner) serverNode(im impl) *node.Node {
	r.seq++
	return &node.Node{Impl: im, Bin: r.bin(im), Dir: r.data.server[im], Name: fmt.Sprintf("%s-server-%d", im, r.seq), Extra: r.extra(im)}
}

// pair starts the server on its prepared repository and a fresh client,
// connected to it. Mounts are made under the work directory when asked.
// done stops both and puts the client's repository in the trash.
func (r *runner) pair(ctx context.Context, p pairing, mount bool) (srv, cli *node.Node, done func(), err error) {
	srv = r.serverNode(p.server)
	cli, err = r.newNode(ctx, p.client, "client")
	if err != nil {
		return nil, nil, nil, err
	}
	done = func() {
		r.note(cli.Stop(r.procs))
		r.note(srv.Stop(r.procs))
		node.UnmountUnder(r.work)
		r.discard(cli.Dir)
	}
	var srvMnt, cliMnt string
	if mount {
		srvMnt, cliMnt = srv.Dir+".mnt", cli.Dir+".mnt"
	}
	if err = srv.Start(ctx, r.procs, srvMnt); err == nil {
		if err = cli.Start(ctx, r.procs, cliMnt); err == nil {
			err = cli.Connect(ctx, srv)
		}
	}
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return srv, cli, done, nil
}

// note records an error met while cleaning up.
func (r *runner) note(err error) {
	if err != nil {
		r.logf("warning: %v", err)
	}
}

// clientLacks says why a pairing cannot run when bsfs lacks a command.
func (r *runner) clientLacks(p pairing, command string) string {
	if p.client == bsfs && !r.bsfsHas[command] {
		return "n/a: bsfs lacks " + command
	}
	return ""
}

// catRows are the rows rowCat fills.
type catRows struct {
	mbps, floor, srvMem, cliMem *row
	cliIdle, cliFile            *row // MiB
	cpu, srvCPU, cliCPU, cmd    *row // seconds of CPU per GiB
	cores                       *row // CPU time over wall time
}

func (c catRows) all() []*row {
	return []*row{c.mbps, c.floor, c.srvMem, c.cliMem, c.cliIdle, c.cliFile, c.cpu, c.srvCPU, c.cliCPU, c.cmd, c.cores}
}

// rowCat fetches the big file with `cat` and records MB/s, each daemon's
// peak memory afterwards, and the CPU time the transfer cost.
func (r *runner) rowCat(ctx context.Context) {
	rows := catRows{
		mbps:    r.res.row(tablePairs, fmt.Sprintf("`cat` %d MiB file", r.cfg.fileMiB), "MB/s", true),
		floor:   r.res.row(tablePairs, "... its blocks' files written by one plain loop right after: the client's file-system floor", "MB/s", true),
		srvMem:  r.res.row(tablePairs, "peak memory of the server after it (VmHWM)", "MiB", false),
		cliMem:  r.res.row(tablePairs, "peak memory of the client after it (VmHWM)", "MiB", false),
		cliIdle: r.res.row(tablePairs, "... the client's peak before it: started and connected, nothing fetched (VmHWM)", "MiB", false),
		cliFile: r.res.row(tablePairs, "... the client's resident pages mapped from files after it, its program's code and data (RssFile)", "MiB", false),
		cpu:     r.res.row(tablePairs, "CPU time of that `cat`: server + client daemons + command line", "s/GiB", false),
		srvCPU:  r.res.row(tablePairs, "... server daemon", "s/GiB", false),
		cliCPU:  r.res.row(tablePairs, "... client daemon", "s/GiB", false),
		cmd:     r.res.row(tablePairs, "... command line (`ipfs cat`, `bsfs cat`)", "s/GiB", false),
		cores:   r.res.row(tablePairs, fmt.Sprintf("... cores busy: that CPU time over the `cat`'s wall time (the machine has %d)", runtime.NumCPU()), "cores", false),
	}
	for run := range r.cfg.runs {
		for _, p := range rotate(pairings, run) {
			if ctx.Err() != nil {
				return
			}
			col := p.String()
			if why := r.clientLacks(p, "cat"); why != "" {
				for _, row := range rows.all() {
					row.skip(col, why)
				}
				continue
			}
			if err := r.catOnce(ctx, p, run, rows); err != nil {
				rows.mbps.fail(col, err)
				r.logf("cat %s run %d: %v", col, run, err)
			}
		}
	}
}

// catOnce is one run of rowCat for one pairing. The daemons' CPU times are
// read just before and just after the command line runs.
func (r *runner) catOnce(ctx context.Context, p pairing, run int, rows catRows) error {
	srv, cli, done, err := r.pair(ctx, p, false)
	if err != nil {
		return err
	}
	defer done()
	profiled := r.cfg.profile != "" && p == (pairing{bsfs, bsfs}) && run == 0
	if profiled {
		defer r.profile(ctx, srv, cli)()
	}
	idle, err := cli.Proc.PeakRSS()
	if err != nil {
		return err
	}
	cpu0, err := cpuTimes(srv, cli)
	if err != nil {
		return err
	}
	t, err := node.Timed(ctx, io.Discard, cli.Env(), cli.Bin, cli.CatArgs(r.data.big.String())...)
	if err != nil {
		return err
	}
	cpu1, err := cpuTimes(srv, cli)
	if err != nil {
		return err
	}
	size := int64(r.cfg.fileMiB) << 20
	if t.Bytes != size {
		return fmt.Errorf("cat wrote %d bytes, want %d", t.Bytes, size)
	}
	col := p.String()
	mbps := float64(size) / 1e6 / t.Wall.Seconds()
	rows.mbps.add(col, mbps)
	for _, m := range []struct {
		row *row
		n   *node.Node
	}{{rows.srvMem, srv}, {rows.cliMem, cli}} {
		rss, err := m.n.Proc.PeakRSS()
		if err != nil {
			return err
		}
		m.row.add(col, float64(rss)/(1<<20))
	}
	file, err := cli.Proc.FileRSS()
	if err != nil {
		return err
	}
	rows.cliIdle.add(col, float64(idle)/(1<<20))
	rows.cliFile.add(col, float64(file)/(1<<20))
	gib := float64(size) / (1 << 30)
	srvCPU, cliCPU := (cpu1[0]-cpu0[0]).Seconds()/gib, (cpu1[1]-cpu0[1]).Seconds()/gib
	cmdCPU := t.CPU.Seconds() / gib
	if !profiled { // the profiler's own work would be counted
		rows.cpu.add(col, srvCPU+cliCPU+cmdCPU)
		rows.srvCPU.add(col, srvCPU)
		rows.cliCPU.add(col, cliCPU)
		rows.cmd.add(col, cmdCPU)
		rows.cores.add(col, (srvCPU+cliCPU+cmdCPU)*gib/t.Wall.Seconds())
	}
	floor, err := r.writeFloor(fileSet{n: int(size / blockSize), size: blockSize, shards: floorShards})
	if err != nil {
		return err
	}
	rows.floor.add(col, float64(size)/1e6/floor.Seconds())
	r.logf("cat %s run %d: %.1f MB/s (floor %.1f); CPU s/GiB: server %.2f, client %.2f, command line %.2f", col, run, mbps, float64(size)/1e6/floor.Seconds(), srvCPU, cliCPU, cmdCPU)
	return nil
}

// blockSize is the size of the big file's blocks (the default chunker of
// both `add`s).
const blockSize = 256 << 10

// cpuTimes returns the CPU time used so far by each node's daemon.
func cpuTimes(nodes ...*node.Node) ([]time.Duration, error) {
	out := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		d, err := n.Proc.CPUTime()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		out[i] = d
	}
	return out, nil
}

// dirRounds is the number of rounds of the directory rows: enough for
// -runs of the fast cases and -dir-runs of the slow ones.
func (r *runner) dirRounds() int { return max(r.cfg.runs, r.cfg.dirRuns) }

// dirRunsFor says whether a case of a directory row runs in round run.
// Kubo as the client fetches a directory block after block, ~100 s a
// run: such cases run only -dir-runs times, the others -runs times.
func (r *runner) dirRunsFor(kuboClient bool, run int) bool {
	if kuboClient {
		return run < r.cfg.dirRuns
	}
	return run < r.cfg.runs
}

// rowDir fetches the directory of small files with `get`: blocks/s.
func (r *runner) rowDir(ctx context.Context) {
	row := r.res.row(tablePairs, fmt.Sprintf("`get` directory of %d files of 4 KiB (%d blocks)", r.cfg.dirFiles, r.data.dirBlocks), "blocks/s", true)
	floorRow := r.res.row(tablePairs, "... its blocks' files and the files of its output written by one plain loop right after: the client's file-system floor", "blocks/s", true)
	for run := range r.dirRounds() {
		for _, p := range rotate(pairings, run) {
			if ctx.Err() != nil {
				return
			}
			if !r.dirRunsFor(p.client == kubo, run) {
				continue
			}
			col := p.String()
			if why := r.clientLacks(p, "get"); why != "" {
				row.skip(col, why)
				continue
			}
			err := func() error {
				_, cli, done, err := r.pair(ctx, p, false)
				if err != nil {
					return err
				}
				defer done()
				out := cli.Dir + ".get"
				defer r.discard(out)
				start := time.Now()
				if _, err := cli.CLI(ctx, cli.GetArgs(r.data.dir.String(), out)...); err != nil {
					return err
				}
				d := time.Since(start)
				ents, err := os.ReadDir(out)
				if err != nil {
					return err
				}
				if len(ents) != r.cfg.dirFiles {
					return fmt.Errorf("get wrote %d entries, want %d", len(ents), r.cfg.dirFiles)
				}
				v := float64(r.data.dirBlocks) / d.Seconds()
				row.add(col, v)
				floor, err := r.writeFloor(fileSet{n: r.data.dirBlocks, size: 4096, shards: floorShards}, fileSet{n: r.cfg.dirFiles, size: 4096, shards: 1})
				if err != nil {
					return err
				}
				fv := float64(r.data.dirBlocks) / floor.Seconds()
				floorRow.add(col, fv)
				r.logf("get %s run %d: %.1f blocks/s (%v); floor %.1f blocks/s", col, run, v, d.Round(time.Millisecond), fv)
				return nil
			}()
			if err != nil {
				row.fail(col, err)
				r.logf("get %s run %d: %v", col, run, err)
			}
		}
	}
}

// rowLatency fetches single 1 KiB blocks from a connected peer, each one
// new to the client: the median of the samples, with the command line and
// through the daemon's API.
func (r *runner) rowLatency(ctx context.Context) {
	cliRow := r.res.row(tablePairs, fmt.Sprintf("`block get` 1 KiB, command line (median of %d)", r.cfg.samples), "ms", false)
	apiRow := r.res.row(tablePairs, fmt.Sprintf("`block get` 1 KiB, API: Kubo RPC over TCP, bsfs local API over its socket (median of %d)", r.cfg.samples), "ms", false)
	startRow := r.res.row(tablePairs, fmt.Sprintf("`version` of the client's command line: its start-up alone, nothing asked of the daemon (median of %d)", r.cfg.samples), "ms", false)
	for run := range r.cfg.runs {
		for _, p := range rotate(pairings, run) {
			if ctx.Err() != nil {
				return
			}
			col := p.String()
			err := func() error {
				srv, cli, done, err := r.pair(ctx, p, false)
				if err != nil {
					return err
				}
				defer done()
				cids := make([]cid.Cid, 2*r.cfg.samples+1)
				for i := range cids {
					data := make([]byte, 1024)
					rand.Read(data)
					if cids[i], err = srv.PutBlock(ctx, data); err != nil {
						return err
					}
				}
				// The first fetch of a connection may set up more than the
				// others: not counted.
				if _, err := cli.GetBlockAPI(ctx, cids[0]); err != nil {
					return err
				}
				var viaCLI, viaAPI []float64
				for _, c := range cids[1 : 1+r.cfg.samples] {
					d, n, err := node.TimedCount(ctx, cli.Env(), cli.Bin, "block", "get", c.String())
					if err != nil {
						return err
					}
					if n != 1024 {
						return fmt.Errorf("block get wrote %d bytes, want 1024", n)
					}
					viaCLI = append(viaCLI, ms(d))
				}
				for _, c := range cids[1+r.cfg.samples:] {
					start := time.Now()
					data, err := cli.GetBlockAPI(ctx, c)
					if err != nil {
						return err
					}
					d := time.Since(start)
					if len(data) != 1024 {
						return fmt.Errorf("API block get answered %d bytes, want 1024", len(data))
					}
					viaAPI = append(viaAPI, ms(d))
				}
				var startUp []float64
				for range r.cfg.samples {
					d, _, err := node.TimedCount(ctx, cli.Env(), cli.Bin, "version")
					if err != nil {
						return err
					}
					startUp = append(startUp, ms(d))
				}
				cliRow.add(col, stat.Median(viaCLI))
				apiRow.add(col, stat.Median(viaAPI))
				startRow.add(col, stat.Median(startUp))
				r.logf("block get %s run %d: CLI %.1f ms, API %.1f ms, version %.1f ms", col, run, stat.Median(viaCLI), stat.Median(viaAPI), stat.Median(startUp))
				return nil
			}()
			if err != nil {
				cliRow.fail(col, err)
				apiRow.fail(col, err)
				startRow.fail(col, err)
				r.logf("block get %s run %d: %v", col, run, err)
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rowSwarm has many fresh clients fetch the same file from one server at
// once: the server's total MB/s and the slowest client's time over the
// fastest's.
func (r *runner) rowSwarm(ctx context.Context) {
	n := r.cfg.swarmClients
	total := r.res.row(tablePairs, fmt.Sprintf("%d clients `cat` the same %d MiB at once: server's total", n, r.cfg.swarmMiB), "MB/s", true)
	spread := r.res.row(tablePairs, "... slowest client's time / fastest's", "×", false)
	mem := r.res.row(tablePairs, "... peak memory of the server (VmHWM)", "MiB", false)
	size := int64(r.cfg.swarmMiB) << 20
	for run := range r.cfg.swarmRuns {
		for _, p := range rotate(pairings, run) {
			if ctx.Err() != nil {
				return
			}
			col := p.String()
			if why := r.clientLacks(p, "cat"); why != "" {
				total.skip(col, why)
				spread.skip(col, why)
				mem.skip(col, why)
				continue
			}
			err := func() error {
				srv := r.serverNode(p.server)
				if err := srv.Start(ctx, r.procs, ""); err != nil {
					return err
				}
				defer func() { r.note(srv.Stop(r.procs)) }()
				clients, stop, err := r.swarmClients(ctx, p.client, srv)
				defer stop()
				if err != nil {
					return err
				}
				errs := make([]error, n)
				var wg sync.WaitGroup
				if r.cfg.profile != "" && p == (pairing{bsfs, bsfs}) && run == 0 {
					defer r.profile(ctx, srv)()
				}
				times := make([]float64, n)
				start := time.Now()
				for i, c := range clients {
					wg.Go(func() {
						var got int64
						var d time.Duration
						d, got, errs[i] = node.TimedCount(ctx, c.Env(), c.Bin, c.CatArgs(r.data.swarm.String())...)
						if errs[i] == nil && got != size {
							errs[i] = fmt.Errorf("%s: cat wrote %d bytes, want %d", c.Name, got, size)
						}
						times[i] = d.Seconds()
					})
				}
				wg.Wait()
				wall := time.Since(start)
				if err := errors.Join(errs...); err != nil {
					return err
				}
				v := float64(int64(n)*size) / 1e6 / wall.Seconds()
				total.add(col, v)
				spread.add(col, slices.Max(times)/slices.Min(times))
				rss, err := srv.Proc.PeakRSS()
				if err != nil {
					return err
				}
				mem.add(col, float64(rss)/(1<<20))
				r.logf("swarm %s run %d: %.1f MB/s, slowest/fastest %.2f", col, run, v, slices.Max(times)/slices.Min(times))
				return nil
			}()
			if err != nil {
				total.fail(col, err)
				r.logf("swarm %s run %d: %v", col, run, err)
			}
		}
	}
}

// profileSeconds is the length of the CPU profiles taken with -profile.
const profileSeconds = 10

// profile starts CPU profiles of the bsfs daemons given, through their
// /debug/pprof/ (see node.Node.Debug); the function it returns waits for them
// and then takes allocation profiles. A daemon without the endpoint
// is noted and skipped.
func (r *runner) profile(ctx context.Context, nodes ...*node.Node) (wait func()) {
	if err := os.MkdirAll(r.cfg.profile, 0o755); err != nil {
		r.logf("profile: %v", err)
		return func() {}
	}
	var wg sync.WaitGroup
	var ok []*node.Node
	for _, n := range nodes {
		if _, err := n.Debug(ctx, "/debug/pprof/"); err != nil {
			r.logf("profile: %s serves no /debug/pprof/: %v", n.Name, err)
			continue
		}
		ok = append(ok, n)
		wg.Go(func() {
			r.saveProfile(ctx, n, fmt.Sprintf("/debug/pprof/profile?seconds=%d", profileSeconds), "cpu")
		})
	}
	return func() {
		wg.Wait()
		for _, n := range ok {
			r.saveProfile(ctx, n, "/debug/pprof/allocs", "allocs")
		}
	}
}

func (r *runner) saveProfile(ctx context.Context, n *node.Node, path, kind string) {
	raw, err := n.Debug(ctx, path)
	if err == nil {
		file := filepath.Join(r.cfg.profile, fmt.Sprintf("%s.%s.pprof", n.Name, kind))
		err = os.WriteFile(file, raw, 0o644)
		r.logf("profile: wrote %s", file)
	}
	if err != nil {
		r.logf("profile: %s %s: %v", n.Name, kind, err)
	}
}

// swarmClients starts -swarm-clients fresh clients of im, four at a time,
// each connected to srv. stop stops those that started and puts their
// repositories in the trash.
func (r *runner) swarmClients(ctx context.Context, im impl, srv *node.Node) (clients []*node.Node, stop func(), err error) {
	srvSeq := r.seq // names this run's clients
	clients = make([]*node.Node, r.cfg.swarmClients)
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("%s-swarm-%d-%d", im, srvSeq, i)
			c := &node.Node{Impl: im, Bin: r.bin(im), Dir: filepath.Join(r.work, name), Name: name, Extra: r.extra(im)}
			clients[i] = c
			if errs[i] = c.InitRepo(ctx); errs[i] == nil {
				if errs[i] = c.Start(ctx, r.procs, ""); errs[i] == nil {
					errs[i] = c.Connect(ctx, srv)
				}
			}
		})
	}
	wg.Wait()
	stop = func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() {
				r.note(c.Stop(r.procs))
				r.discard(c.Dir)
			})
		}
		wg.Wait()
	}
	return clients, stop, errors.Join(errs...)
}
