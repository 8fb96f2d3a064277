package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/bsfs/bsfs/internal/mounttest"
)

// dfOf returns what df shows for dir: its size and the bytes used.
func dfOf(t *testing.T, dir string) (size, used uint64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, (st.Blocks - st.Bfree) * bs
}

// TestMountThroughDaemonStatfs: df on a mount through the daemon's API
// shows the daemon's cache quota as the size and its fetched blocks as
// used, as df on the daemon's own mount does.
func TestMountThroughDaemonStatfs(t *testing.T) {
	mounttest.RequireFUSE(t)
	repoA, repoB := t.TempDir(), t.TempDir()
	ownDir, apiDir := t.TempDir(), t.TempDir()
	const quota = 64 << 20
	a := startDaemon(t, repoA, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")
	b := startDaemon(t, repoB, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "", "--cache-size", "64MiB", "--mount", ownDir)
	m := startMount(t, repoB, apiDir)

	// B fetches a file only A has: its blocks are B's cache's use.
	path, data := randomFile(t, 1<<20)
	root := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path))
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))
	if got := ok(t, repoB, "", "cat", root); got != string(data) {
		t.Fatalf("cat on B: %d bytes, want the %d added on A", len(got), len(data))
	}

	ownSize, ownUsed := dfOf(t, ownDir)
	apiSize, apiUsed := dfOf(t, apiDir)
	if ownSize != quota || ownUsed < uint64(len(data)) || ownUsed > quota {
		t.Errorf("df on the daemon's own mount: size %d, used %d; want %d and at least %d", ownSize, ownUsed, quota, len(data))
	}
	if apiSize != ownSize || apiUsed != ownUsed {
		t.Errorf("df on the mount through the daemon: size %d, used %d; want the daemon's own mount's %d, %d", apiSize, apiUsed, ownSize, ownUsed)
	}

	stopMount(t, m, apiDir, syscall.SIGINT)
	b.stopClean(t)
}
