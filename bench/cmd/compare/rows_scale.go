package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/bench/internal/node"
)

// Columns of the scale table: bsfs's measure and its target.
const (
	colTarget = "target"
)

// Targets of the scale rows: the big read's peak memory may exceed the
// small read's by memSlack; a big directory's time per entry may be
// lsSlack times the small one's.
const (
	memSlack = 16 << 20
	lsSlack  = 1.2
)

// scaleRows are the rows rowScale fills.
type scaleRows struct {
	small, big       *row // MB/s
	smallMem, bigMem *row // MiB
	smallLs, bigLs   *row // µs per entry
}

func (s scaleRows) all() []*row {
	return []*row{s.small, s.big, s.smallMem, s.bigMem, s.smallLs, s.bigLs}
}

// scaleData is what the scale rows' server holds.
type scaleData struct {
	small, big, smallDir, bigDir cid.Cid
}

// rowScale shows how bsfs's cost grows with the work, bsfs alone: the big
// file and a -scale-gib file read through a fresh client's `bsfs mount`,
// fetched from a daemon, with the mount's peak memory after each; and
// `ls -l` of the -dir-files directory and of a -scale-dir-files one, the
// same way, per entry. Each measure has a mount process of its own.
func (r *runner) rowScale(ctx context.Context) {
	rows := scaleRows{
		small:    r.res.row(tableScale, fmt.Sprintf("`cat` %d MiB, fetched through the mount", r.cfg.fileMiB), "MB/s", true),
		big:      r.res.row(tableScale, fmt.Sprintf("`cat` %d GiB, fetched through the mount", r.cfg.scaleGiB), "MB/s", true),
		smallMem: r.res.row(tableScale, fmt.Sprintf("peak memory of the mount after the %d MiB read (VmHWM)", r.cfg.fileMiB), "MiB", false),
		bigMem:   r.res.row(tableScale, fmt.Sprintf("peak memory of the mount after the %d GiB read (VmHWM); target: the %d MiB read's + %d MiB", r.cfg.scaleGiB, r.cfg.fileMiB, memSlack>>20), "MiB", false),
		smallLs:  r.res.row(tableScale, fmt.Sprintf("`ls -l` of the %d-entry directory, fetched through the mount, per entry", r.cfg.dirFiles), "µs", false),
		bigLs:    r.res.row(tableScale, fmt.Sprintf("`ls -l` of the %d-entry directory, fetched through the mount, per entry; target: %.1f× the %d-entry one's", r.cfg.scaleDirFiles, lsSlack, r.cfg.dirFiles), "µs", false),
	}
	skip := func(why string) {
		for i, row := range rows.all() {
			if i == 0 {
				row.skip(colBsfsMount, why)
			} else {
				row.skip(colBsfsMount, "skipped, as above")
			}
		}
		r.logf("scale: %s", why)
	}
	if !r.bsfsHas["add"] || !r.bsfsHas["mount"] {
		skip("n/a: bsfs lacks add or mount")
		return
	}
	need := r.scaleDisk()
	switch free, err := freeBytes(r.work); {
	case err != nil:
		skip(fmt.Sprintf("skipped: no free space known for the work directory: %v", err))
		return
	case free < need:
		skip(fmt.Sprintf("skipped: %.1f GiB free on the work directory's disk, %.1f GiB needed", float64(free)/(1<<30), float64(need)/(1<<30)))
		return
	}
	srv, err := r.newNode(ctx, bsfs, "scale-server")
	if err == nil {
		defer os.RemoveAll(srv.Dir)
	}
	var data scaleData
	if err == nil {
		data, err = r.prepareScale(ctx, srv)
	}
	if err != nil {
		rows.small.fail(colBsfsMount, err)
		r.logf("scale: %v", err)
		return
	}
	for run := range r.cfg.scaleRuns {
		if err := r.scaleOnce(ctx, srv, data, run, rows); err != nil {
			rows.small.fail(colBsfsMount, err)
			r.logf("scale run %d: %v", run, err)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// scaleDisk is the disk space the scale rows may use at most: the server's
// copy of everything and each run's client's (the runs' clients are
// deleted together at the end of the row), and the big directory's tree;
// 8 KiB for each 4 KiB file (its block's file, the directories), and
// 1 GiB to spare.
func (r *runner) scaleDisk() int64 {
	files := int64(r.cfg.scaleDirFiles + r.cfg.dirFiles)
	bytes := int64(r.cfg.scaleGiB)<<30 + int64(r.cfg.fileMiB)<<20
	copies := int64(1 + r.cfg.scaleRuns)
	return copies*bytes + (copies+1)*files*8<<10 + 1<<30
}

// freeBytes is the space free for us on dir's file system.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// prepareScale adds the scale rows' data to srv's repository, its daemon
// stopped: the big file and directory already written, a -scale-gib file
// generated as it is added, and a -scale-dir-files directory written to a
// temporary tree, put in the trash once added (deleted at the end of the
// row: deleting its files here would put the mounts' file creation on the
// slow path discard tells of).
func (r *runner) prepareScale(ctx context.Context, srv *node.Node) (scaleData, error) {
	var data scaleData
	start := time.Now()
	add := func(path string) (cid.Cid, error) {
		out, err := srv.CLI(ctx, srv.AddArgs(path)...)
		if err != nil {
			return cid.Undef, err
		}
		return cid.Decode(strings.TrimSpace(string(out)))
	}
	var err error
	if data.small, err = add(filepath.Join(r.work, "data", "big")); err != nil {
		return data, err
	}
	if data.smallDir, err = add(filepath.Join(r.work, "data", "dir")); err != nil {
		return data, err
	}
	var key [32]byte
	key[0] = 3
	size := int64(r.cfg.scaleGiB) << 30
	out, err := srv.CLIInput(ctx, io.LimitReader(rand.NewChaCha8(key), size), "add", "-Q", "-")
	if err != nil {
		return data, err
	}
	if data.big, err = cid.Decode(strings.TrimSpace(string(out))); err != nil {
		return data, err
	}
	tree := filepath.Join(r.work, "scale-dir")
	defer r.discard(tree)
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return data, err
	}
	for i := range r.cfg.scaleDirFiles {
		if err := writeRandom(filepath.Join(tree, fmt.Sprintf("f%06d", i)), 4096, 1<<32+uint64(i)); err != nil {
			return data, err
		}
	}
	if data.bigDir, err = add(tree); err != nil {
		return data, err
	}
	r.logf("scale: added %d GiB and %d files in %v", r.cfg.scaleGiB, r.cfg.scaleDirFiles, time.Since(start).Round(time.Second))
	return data, nil
}

// scaleOnce is one run of rowScale: the server's daemon, and a fresh
// client's mount for each of the four measures, in an order that turns
// from run to run. The targets follow from the small measures.
func (r *runner) scaleOnce(ctx context.Context, srv *node.Node, data scaleData, run int, rows scaleRows) error {
	if err := srv.Start(ctx, r.procs, ""); err != nil {
		return err
	}
	defer func() { r.note(srv.Stop(r.procs)) }()
	var smallMem, smallLs float64
	measures := []func() error{
		func() (err error) {
			smallMem, err = r.scaleCat(ctx, srv, data.small, int64(r.cfg.fileMiB)<<20, rows.small, rows.smallMem)
			return err
		},
		func() error {
			_, err := r.scaleCat(ctx, srv, data.big, int64(r.cfg.scaleGiB)<<30, rows.big, rows.bigMem)
			return err
		},
		func() (err error) {
			smallLs, err = r.scaleLs(ctx, srv, data.smallDir, r.cfg.dirFiles, rows.smallLs)
			return err
		},
		func() error {
			_, err := r.scaleLs(ctx, srv, data.bigDir, r.cfg.scaleDirFiles, rows.bigLs)
			return err
		},
	}
	for _, m := range rotate(measures, run) {
		if err := m(); err != nil {
			return err
		}
	}
	rows.bigMem.add(colTarget, smallMem+memSlack>>20)
	rows.bigLs.add(colTarget, lsSlack*smallLs)
	return nil
}

// scaleCat reads file c of size bytes through a fresh client's mount,
// fetched from srv: it records MB/s and the mount's peak memory in MiB,
// and returns the latter.
func (r *runner) scaleCat(ctx context.Context, srv *node.Node, c cid.Cid, size int64, mbps, mem *row) (float64, error) {
	cli, done, err := r.bsfsMountClient(ctx, srv)
	if err != nil {
		return 0, err
	}
	defer done()
	d, err := catFile(ctx, mountPath(cli, c), size)
	if err != nil {
		return 0, err
	}
	rss, err := cli.Proc.PeakRSS()
	if err != nil {
		return 0, err
	}
	v, m := float64(size)/1e6/d.Seconds(), float64(rss)/(1<<20)
	mbps.add(colBsfsMount, v)
	mem.add(colBsfsMount, m)
	r.logf("scale: cat %d MiB through the mount: %.1f MB/s, VmHWM %.1f MiB", size>>20, v, m)
	return m, nil
}

// scaleLs lists directory c of n entries with `ls -l` through a fresh
// client's mount, fetched from srv: it records and returns the time per
// entry in µs.
func (r *runner) scaleLs(ctx context.Context, srv *node.Node, c cid.Cid, n int, perEntry *row) (float64, error) {
	cli, done, err := r.bsfsMountClient(ctx, srv)
	if err != nil {
		return 0, err
	}
	defer done()
	d, err := lsLong(ctx, mountPath(cli, c), n)
	if err != nil {
		return 0, err
	}
	v := float64(d) / float64(time.Microsecond) / float64(n)
	perEntry.add(colBsfsMount, v)
	r.logf("scale: ls -l of %d entries through the mount: %v, %.1f µs per entry", n, d.Round(time.Millisecond), v)
	return v, nil
}
