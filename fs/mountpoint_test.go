package fs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bsfs "github.com/bsfs/bsfs/fs"
)

// mountsAt counts the mounts at dir in this thread's mount table.
func mountsAt(t *testing.T, dir string) int {
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

// TestMountOnLiveMount mounts at a directory where a live mount already
// is. Over a bsfs mount, Mount and Check fail with ErrMountPointInUse
// naming it; the directory still has one mount, which keeps serving. Over
// a tmpfs, any other live mount, likewise.
func TestMountOnLiveMount(t *testing.T) {
	n := newNode(t)
	b := newBlock(t, rawPrefix, []byte("served by the first mount"))
	n.put(t, b)
	dir := mount(t, n.ex, bsfs.Config{})

	srv, err := bsfs.Mount(dir, n.ex, bsfs.Config{ReadTimeout: testReadTimeout})
	if err == nil {
		mounts := mountsAt(t, dir)
		srv.Unmount()
		t.Fatalf("second Mount at a live bsfs mount succeeded (%d mounts at %s)", mounts, dir)
	}
	t.Logf("refused: %v", err)
	for _, err := range []error{err, bsfs.Check(dir)} {
		if !errors.Is(err, bsfs.ErrMountPointInUse) {
			t.Errorf("mount at a live bsfs mount: %v, want ErrMountPointInUse", err)
		}
		for _, want := range []string{"live mount of bsfs (type fuse.bsfs)", dir} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	}
	if k := mountsAt(t, dir); k != 1 {
		t.Errorf("%d mounts at %s, want 1", k, dir)
	}
	if got, err := os.ReadFile(filepath.Join(dir, b.CID.String())); err != nil || !bytes.Equal(got, b.Data) {
		t.Errorf("read through the first mount: %q, %v", got, err)
	}

	tmp := t.TempDir()
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", 0, "size=1m"); err != nil {
		if os.Getenv("BSFS_REQUIRE_ROOT") == "1" {
			t.Fatalf("mounting a tmpfs on %s (BSFS_REQUIRE_ROOT=1): %v", tmp, err)
		}
		t.Skipf("mounting a tmpfs needs root (set BSFS_REQUIRE_ROOT=1 to fail instead): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(tmp, 0); err != nil {
			t.Errorf("unmounting %s: %v", tmp, err)
		}
	})
	srv, err = bsfs.Mount(tmp, n.ex, bsfs.Config{ReadTimeout: testReadTimeout})
	if err == nil {
		srv.Unmount()
		t.Fatalf("Mount at a tmpfs succeeded")
	}
	if !errors.Is(err, bsfs.ErrMountPointInUse) || !strings.Contains(err.Error(), "live mount of tmpfs (type tmpfs)") {
		t.Errorf("mount at a tmpfs: %v, want ErrMountPointInUse naming the tmpfs", err)
	}
	if k := mountsAt(t, tmp); k != 1 {
		t.Errorf("%d mounts at %s, want 1", k, tmp)
	}
}
