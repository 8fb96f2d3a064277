package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/node"
)

// Offline, each command its own process: add pins, gc keeps pins and
// removes the rest, pin rm lets gc remove the file.
func TestPinAndGCOffline(t *testing.T) {
	repo := t.TempDir()
	path, data := randomFile(t, 1<<20+9)
	c := strings.TrimSpace(ok(t, repo, "", "add", "-Q", path))
	loose := strings.TrimSpace(ok(t, repo, "loose block", "block", "put"))
	if got := ok(t, repo, "", "pin", "ls"); got != c+" recursive\n" {
		t.Fatalf("pin ls after add: %q, want %s", got, c)
	}
	// A repository from before pins has roots and no pins file: its
	// roots are pinned when the cache is first opened.
	if err := os.Remove(filepath.Join(repo, node.CacheDir, cache.PinsFile)); err != nil {
		t.Fatal(err)
	}
	if got := ok(t, repo, "", "pin", "ls"); got != c+" recursive\n" {
		t.Fatalf("pin ls of a repository without pins: %q, want its root %s", got, c)
	}
	if got := ok(t, repo, "", "gc"); got != "removed 1 blocks, 11 bytes\n" {
		t.Fatalf("gc printed %q, want the loose block removed", got)
	}
	if msg := fails(t, repo, "", "block", "stat", loose); !strings.Contains(msg, "not found") {
		t.Errorf("block stat of the collected block: %q", msg)
	}
	if got := ok(t, repo, "", "cat", c); got != string(data) {
		t.Fatalf("cat of the pinned file after gc: %d bytes", len(got))
	}
	if got := ok(t, repo, "", "pin", "rm", c); got != "unpinned "+c+"\n" {
		t.Errorf("pin rm printed %q", got)
	}
	if msg := fails(t, repo, "", "pin", "rm", c); !strings.Contains(msg, "not pinned") {
		t.Errorf("second pin rm: %q", msg)
	}
	if got := ok(t, repo, "", "gc"); !strings.HasPrefix(got, "removed 6 blocks, ") {
		t.Fatalf("gc after pin rm printed %q, want the file's 6 blocks removed", got)
	}
	if n := countBlocks(t, filepath.Join(repo, "blocks")); n != 0 {
		t.Errorf("%d blocks left after gc of everything", n)
	}
	if msg := fails(t, repo, "", "pin", "add", c); !strings.Contains(msg, "start 'bsfs daemon'") {
		t.Errorf("pin add of an absent DAG offline: %q", msg)
	}
	if got := ok(t, repo, "", "pin", "ls"); got != "" {
		t.Errorf("pin ls: %q, want nothing", got)
	}
	fails(t, repo, "", "pin", "add", "nonsense")
}

// pin add fetches the DAG from a peer; a daemon with a quota keeps its
// store within it, pinned content aside.
func TestPinFetchesAndQuotaHolds(t *testing.T) {
	repoA, repoB := t.TempDir(), t.TempDir()
	a := startDaemon(t, repoA)
	b := startDaemon(t, repoB, "--listen", "/ip4/127.0.0.1/tcp/0", "--cache-size", "1MiB")
	pinPath, pinData := randomFile(t, 2<<20)
	pinned := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", pinPath))
	bigPath, bigData := randomFile(t, 6<<20)
	big := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", bigPath))
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))

	if got := ok(t, repoB, "", "pin", "add", pinned); got != "pinned "+pinned+"\n" {
		t.Fatalf("pin add printed %q", got)
	}
	if got := ok(t, repoB, "", "cat", big); got != string(bigData) {
		t.Fatalf("cat of a file 6 times the quota: %d bytes", len(got))
	}
	a.stopClean(t)
	b.stopClean(t)
	// Offline now: the pinned file is whole, the big one mostly gone.
	if got := ok(t, repoB, "", "cat", pinned); got != string(pinData) {
		t.Fatalf("cat of the pinned file: %d bytes", len(got))
	}
	if size := dirBytes(t, filepath.Join(repoB, "blocks")); size > 2<<20+1<<20+64<<10 {
		t.Errorf("B's store holds %d bytes: more than the pin, the quota and a root", size)
	}
	fails(t, repoB, "", "cat", big)
	if got := ok(t, repoB, "", "pin", "ls"); got != pinned+" recursive\n" {
		t.Errorf("pin ls after a restart: %q", got)
	}
	if msg := fails(t, repoB, "", "daemon", "--cache-size", "lots"); !strings.Contains(msg, "invalid size") {
		t.Errorf("daemon --cache-size lots: %q", msg)
	}
}

// A daemon serves a Kubo repository's blocks/ directory with --blocks,
// without copying it.
func TestDaemonServesKuboBlocks(t *testing.T) {
	kubo := kubotest.Start(t)
	_, data := randomFile(t, 1<<20+3)
	c, err := kubo.Add(t.Context(), data, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	kuboBlocks := filepath.Join(kubo.Path(), "blocks")
	before := countBlocks(t, kuboBlocks)
	repo := t.TempDir()
	d := startDaemon(t, repo, "--listen", "/ip4/127.0.0.1/tcp/0", "--blocks", kuboBlocks)
	// The daemon is connected to nobody: the blocks come from the shared
	// directory.
	if got := ok(t, repo, "", "cat", c.String()); got != string(data) {
		t.Fatalf("cat through --blocks: %d bytes, want %d", len(got), len(data))
	}
	if got := ok(t, repo, "", "gc"); got != "removed 0 blocks, 0 bytes\n" {
		t.Errorf("gc printed %q: it must not touch the shared directory", got)
	}
	d.stopClean(t)
	if n := countBlocks(t, filepath.Join(repo, "blocks")); n != 0 {
		t.Errorf("%d blocks copied into our store", n)
	}
	if n := countBlocks(t, kuboBlocks); n != before {
		t.Errorf("Kubo's blocks/ holds %d blocks, had %d", n, before)
	}
}

// countBlocks counts the block files in a flatfs directory.
func countBlocks(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".data") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dirBytes adds up the sizes of the block files in a flatfs directory.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".data") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}
