// Package mounttest helps tests that mount file systems: it skips them
// where FUSE or the right to mount is missing (or fails them when the
// environment requires it), mounts tmpfs, and reads the kernel's mount
// table and a process's descriptors of /dev/fuse.
package mounttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RequireFUSE skips the test when FUSE is not available here, or fails it
// under BSFS_REQUIRE_FUSE=1.
func RequireFUSE(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return
	}
	SkipFUSE(t, "/dev/fuse: "+err.Error())
}

// SkipFUSE skips the test because FUSE is unavailable for the reason why,
// or fails it under BSFS_REQUIRE_FUSE=1.
func SkipFUSE(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("BSFS_REQUIRE_FUSE") == "1" {
		t.Fatalf("FUSE required (BSFS_REQUIRE_FUSE=1) but unavailable: %s", why)
	}
	t.Skipf("FUSE unavailable (%s); set BSFS_REQUIRE_FUSE=1 to fail instead", why)
}

// Tmpfs mounts a tmpfs of size ("2m") on dir, made if missing, and
// unmounts it when the test ends. Without the right to mount it skips the
// test, unless BSFS_REQUIRE_ROOT=1.
func Tmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("BSFS_REQUIRE_ROOT") == "1" {
			t.Fatalf("mounting a tmpfs on %s (BSFS_REQUIRE_ROOT=1): %v", dir, err)
		}
		t.Skipf("mounting a tmpfs needs root (set BSFS_REQUIRE_ROOT=1 to fail instead): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
}

// At counts the mounts at dir in the calling thread's mount table.
func At(t testing.TB, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}

// FUSEFDs counts the descriptors process pid has open on /dev/fuse.
func FUSEFDs(t testing.TB, pid int) int {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		// A descriptor closed meanwhile, such as the one ReadDir held, no
		// longer reads.
		if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && target == "/dev/fuse" {
			n++
		}
	}
	return n
}
