package fs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/mounttest"
)

// TestUnmountLeavesNothing mounts, reads, and unmounts: once Unmount
// returns, the mount is gone from /proc/mounts, this process holds no
// descriptor of /dev/fuse, the mountpoint is a plain directory again, and
// Wait returns.
func TestUnmountLeavesNothing(t *testing.T) {
	mounttest.RequireFUSE(t)
	n := newNode(t)
	b := blocktest.NewBlock(t, rawPrefix, []byte("read before the unmount"))
	n.put(t, b)
	dir := t.TempDir()
	before := mounttest.FUSEFDs(t, os.Getpid())
	srv, err := bsfs.Mount(dir, n.ex, bsfs.Config{ReadTimeout: testReadTimeout})
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			mounttest.SkipFUSE(t, err.Error())
		}
		t.Fatal(err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			srv.Unmount()
		}
	})
	if got := mounttest.FUSEFDs(t, os.Getpid()); got != before+1 {
		t.Fatalf("%d descriptors of /dev/fuse while mounted, want %d", got, before+1)
	}
	if mounttest.At(t, dir) == 0 {
		t.Fatalf("%s not in /proc/mounts while mounted", dir)
	}
	if got, err := os.ReadFile(filepath.Join(dir, b.CID.String())); err != nil || !bytes.Equal(got, b.Data) {
		t.Fatalf("read through the mount: %q, %v", got, err)
	}

	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	unmounted = true
	if got := mounttest.FUSEFDs(t, os.Getpid()); got != before {
		t.Errorf("%d descriptors of /dev/fuse after Unmount, want %d", got, before)
	}
	if mounttest.At(t, dir) > 0 {
		t.Errorf("%s still in /proc/mounts after Unmount", dir)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("the mountpoint after Unmount: %v, %v; want an empty directory", ents, err)
	}
	srv.Wait() // returns at once: the test's time-out catches a hang
}
