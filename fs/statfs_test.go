package fs_test

import (
	"syscall"
	"testing"

	bsfs "github.com/bsfs/bsfs/fs"
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
