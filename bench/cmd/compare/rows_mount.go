package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/bench/internal/node"
)

// Columns of the mount table.
const (
	colKuboMount = "Kubo mount"
	colBsfsMount = "bsfs mount"
	colMemfile   = "go-fuse file in memory"
	// colMemfileSync is the same with synchronous reads, the mode of
	// bsfs's mount.
	colMemfileSync = "go-fuse file in memory, synchronous reads"
)

// mountRows are the rows rowMount fills.
type mountRows struct{ fetched, local, ls *row }

// mountCase is what one column of the mount row reads: the big file
// fetched from a peer (none for the go-fuse file), the file once local,
// and the directory, once beforeLs has made it local.
type mountCase struct {
	fetched, local, dir string
	beforeLs            func() error
}

// rowMount reads the big file through FUSE mounts: fetched from a peer
// through a fresh client's mount, then again with the page cache dropped,
// when its blocks are local; and `ls -l` of the directory through the
// server's mount (local blocks) with the caches dropped. Every mount is
// served by the process that runs the node.
func (r *runner) rowMount(ctx context.Context) {
	rows := mountRows{
		fetched: r.res.row(tableMounts, fmt.Sprintf("`cat` %d MiB, fetched from a peer", r.cfg.fileMiB), "MB/s", true),
		local:   r.res.row(tableMounts, fmt.Sprintf("`cat` %d MiB, local, page cache dropped", r.cfg.fileMiB), "MB/s", true),
		ls:      r.res.row(tableMounts, fmt.Sprintf("`ls -l` of the %d-entry directory, local, caches dropped", r.cfg.dirFiles), "ms", false),
	}
	rows.fetched.skip(colMemfile, "n/a: nothing to fetch")
	rows.fetched.skip(colMemfileSync, "n/a: nothing to fetch")
	for run := range r.cfg.runs {
		for _, col := range rotate([]string{colKuboMount, colBsfsMount, colMemfile, colMemfileSync}, run) {
			if ctx.Err() != nil {
				return
			}
			if col == colBsfsMount && !r.bsfsHas["mount"] {
				for _, row := range []*row{rows.fetched, rows.local, rows.ls} {
					row.skip(col, "n/a: bsfs lacks mount")
				}
				continue
			}
			err := func() error {
				mc, done, err := r.setupMount(ctx, col, run)
				if err != nil {
					return err
				}
				defer done()
				return r.measureMount(ctx, col, mc, rows)
			}()
			if err != nil {
				rows.fetched.fail(col, err)
				r.logf("mount %s run %d: %v", col, run, err)
			} else {
				r.logf("mount %s run %d: done", col, run)
			}
		}
	}
}

// measureMount takes one column's samples of the mount row.
func (r *runner) measureMount(ctx context.Context, col string, mc mountCase, rows mountRows) error {
	size := int64(r.cfg.fileMiB) << 20
	if mc.fetched != "" {
		d, err := catFile(ctx, mc.fetched, size)
		if err != nil {
			return err
		}
		rows.fetched.add(col, float64(size)/1e6/d.Seconds())
	}
	r.dropCaches()
	d, err := catFile(ctx, mc.local, size)
	if err != nil {
		return err
	}
	rows.local.add(col, float64(size)/1e6/d.Seconds())
	if mc.beforeLs != nil {
		if err := mc.beforeLs(); err != nil {
			return err
		}
	}
	r.dropCaches()
	if d, err = lsLong(ctx, mc.dir, r.cfg.dirFiles); err != nil {
		return err
	}
	rows.ls.add(col, ms(d))
	return nil
}

// setupMount starts what a column of the mount row reads through; done
// stops it and unmounts.
func (r *runner) setupMount(ctx context.Context, col string, run int) (mc mountCase, done func(), err error) {
	switch col {
	case colMemfile, colMemfileSync:
		mnt := filepath.Join(r.work, fmt.Sprintf("memfile-%d.mnt", run))
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return mc, nil, err
		}
		cmd := exec.Command(r.cfg.memfile, "-size", fmt.Sprint(int64(r.cfg.fileMiB)<<20), "-files", fmt.Sprint(r.cfg.dirFiles),
			fmt.Sprintf("-sync=%v", col == colMemfileSync), mnt)
		d, err := r.procs.Start(ctx, "memfile", cmd, mnt+".log", "ready")
		if err != nil {
			return mc, nil, err
		}
		done = func() {
			r.note(r.procs.Stop(d))
			node.UnmountUnder(mnt)
		}
		return mountCase{local: filepath.Join(mnt, "file"), dir: filepath.Join(mnt, "dir")}, done, nil
	case colKuboMount:
		srv, cli, done, err := r.pair(ctx, pairing{kubo, kubo}, true)
		if err != nil {
			return mc, nil, err
		}
		f := mountPath(cli, r.data.big)
		return mountCase{fetched: f, local: f, dir: mountPath(srv, r.data.dir)}, done, nil
	}
	// For `ls -l` the server runs `bsfs mount` on its repository in place
	// of its daemon.
	srv := r.serverNode(bsfs)
	cli, done, err := r.bsfsMountPair(ctx, srv)
	if err != nil {
		return mc, nil, err
	}
	f := mountPath(cli, r.data.big)
	mc = mountCase{fetched: f, local: f, dir: mountPath(srv, r.data.dir), beforeLs: func() error {
		if err := srv.Stop(r.procs); err != nil {
			return err
		}
		return srv.Start(ctx, r.procs, srv.Dir+".mnt")
	}}
	return mc, done, nil
}

// bsfsMountPair starts srv's daemon and a fresh client running `bsfs
// mount`; the mount runs its own node but no API, so the server dials it.
// done stops both, unmounts and puts the client's repository in the trash.
func (r *runner) bsfsMountPair(ctx context.Context, srv *node.Node) (cli *node.Node, done func(), err error) {
	if err := srv.Start(ctx, r.procs, ""); err != nil {
		return nil, nil, err
	}
	cli, stopCli, err := r.bsfsMountClient(ctx, srv)
	if err != nil {
		r.note(srv.Stop(r.procs))
		return nil, nil, err
	}
	done = func() {
		stopCli()
		r.note(srv.Stop(r.procs))
		node.UnmountUnder(srv.Dir + ".mnt")
	}
	return cli, done, nil
}

// bsfsMountClient starts a fresh client running `bsfs mount` and has the
// running server srv dial it. done stops it, unmounts and puts its
// repository in the trash.
func (r *runner) bsfsMountClient(ctx context.Context, srv *node.Node) (cli *node.Node, done func(), err error) {
	cli, err = r.newNode(ctx, bsfs, "client")
	if err != nil {
		return nil, nil, err
	}
	done = func() {
		r.note(cli.Stop(r.procs))
		node.UnmountUnder(cli.Dir + ".mnt")
		r.discard(cli.Dir)
	}
	if err = cli.Start(ctx, r.procs, cli.Dir+".mnt"); err == nil {
		err = srv.Connect(ctx, cli)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return cli, done, nil
}

// rowMountDir lists the directory with `ls -l` through a fresh client's
// mount connected to a server holding it, for Kubo's mount and bsfs's.
// With Kubo as the client a run takes minutes: those run only -dir-runs
// times.
func (r *runner) rowMountDir(ctx context.Context) {
	ls := r.res.row(tableMounts, fmt.Sprintf("`ls -l` of the %d-entry directory, fetched from a peer", r.cfg.dirFiles), "ms", false)
	ls.skip(colMemfile, "n/a: nothing to fetch")
	ls.skip(colMemfileSync, "n/a: nothing to fetch")
	for run := range r.dirRounds() {
		for _, col := range rotate([]string{colKuboMount, colBsfsMount}, run) {
			if ctx.Err() != nil {
				return
			}
			if !r.dirRunsFor(col == colKuboMount, run) {
				continue
			}
			if col == colBsfsMount && !r.bsfsHas["mount"] {
				ls.skip(col, "n/a: bsfs lacks mount")
				continue
			}
			err := func() error {
				var (
					cli  *node.Node
					done func()
					err  error
				)
				if col == colKuboMount {
					_, cli, done, err = r.pair(ctx, pairing{kubo, kubo}, true)
				} else {
					cli, done, err = r.bsfsMountPair(ctx, r.serverNode(bsfs))
				}
				if err != nil {
					return err
				}
				defer done()
				d, err := lsLong(ctx, mountPath(cli, r.data.dir), r.cfg.dirFiles)
				if err != nil {
					return err
				}
				ls.add(col, ms(d))
				r.logf("ls -l fetched %s run %d: %v", col, run, d.Round(time.Millisecond))
				return nil
			}()
			if err != nil {
				ls.fail(col, err)
				r.logf("ls -l fetched %s run %d: %v", col, run, err)
			}
		}
	}
}

// catFile reads path with cat and checks its size: the time it took.
func catFile(ctx context.Context, path string, size int64) (time.Duration, error) {
	d, n, err := node.TimedCount(ctx, nil, "cat", path)
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("cat %s read %d bytes, want %d", path, n, size)
	}
	return d, nil
}

// lsLong lists dir with `ls -l` and checks that it printed the total and
// one line for each of the want entries: the time it took.
func lsLong(ctx context.Context, dir string, want int) (time.Duration, error) {
	var lines lineCounter
	t, err := node.Timed(ctx, &lines, []string{"LC_ALL=C"}, "ls", "-l", dir)
	if err != nil {
		return 0, err
	}
	if int(lines) != want+1 {
		return 0, fmt.Errorf("ls -l %s printed %d lines, want %d: the total and %d entries", dir, lines, want+1, want)
	}
	return t.Wall, nil
}

// lineCounter counts the lines written to it.
type lineCounter int

func (c *lineCounter) Write(p []byte) (int, error) {
	*c += lineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// mountPath is c's path under the node's mount.
func mountPath(n *node.Node, c cid.Cid) string {
	if n.Impl == kubo {
		return filepath.Join(n.Dir+".mnt", "ipfs", c.String())
	}
	return filepath.Join(n.Dir+".mnt", c.String())
}

// dropCaches writes back dirty pages and drops the page, dentry and inode
// caches, so that the next read goes through the file system again.
func (r *runner) dropCaches() {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil && r.dropErr == nil {
		r.dropErr = err
		r.logf("warning: cannot drop caches: %v", err)
	}
}
