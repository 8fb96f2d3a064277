package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
)

// TestStatfs: df on the mount shows the capacity and use Usage reports.
func TestStatfs(t *testing.T) {
	n := newNode(t)
	const total, used = 512 << 20, 100 << 20
	dir := mount(t, n.ex, bsfs.Config{Usage: func() (uint64, uint64) { return total, used }})
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	size := uint64(st.Blocks) * uint64(st.Bsize)
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if size != total || free != total-used {
		t.Fatalf("statfs: size %d, free %d; want %d, %d", size, free, uint64(total), uint64(total-used))
	}
}

// counter counts observations.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) Observe(float64) { c.mu.Lock(); c.n++; c.mu.Unlock() }

// TestReadLatencyObserved: every read of a file is timed.
func TestReadLatencyObserved(t *testing.T) {
	n := newNode(t)
	f := buildFile(t, blocktest.RandomBytes(t, 600_000), []int{262144, 262144, 75712}, 174)
	n.put(t, f.blocks...)
	var c counter
	dir := mount(t, n.ex, bsfs.Config{ReadLatency: c.Observe})
	if _, err := os.ReadFile(filepath.Join(dir, f.root.CID.String())); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		t.Fatal("no read was observed")
	}
}

// TestMountOptions: the mount is read-only, nosuid and nodev, and not open
// to other users.
func TestMountOptions(t *testing.T) {
	n := newNode(t)
	dir := mount(t, n.ex, bsfs.Config{})
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var opts string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == dir {
			opts = f[3]
		}
	}
	if opts == "" {
		t.Fatalf("%s not in /proc/mounts", dir)
	}
	set := map[string]bool{}
	for _, o := range strings.Split(opts, ",") {
		set[o] = true
	}
	for _, want := range []string{"ro", "nosuid", "nodev"} {
		if !set[want] {
			t.Errorf("mount options %q lack %s", opts, want)
		}
	}
	if set["allow_other"] {
		t.Errorf("mount options %q allow other users", opts)
	}
}
