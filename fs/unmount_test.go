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

// fuseFDs counts this process's file descriptors open on /dev/fuse.
func fuseFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		// The descriptor ReadDir itself holds is gone by now: Readlink fails.
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "/dev/fuse" {
			n++
		}
	}
	return n
}

// inProcMounts reports whether /proc/mounts lists a mount at dir.
func inProcMounts(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// TestUnmountLeavesNothing mounts, reads, and unmounts: once Unmount
// returns, the mount is gone from /proc/mounts, this process holds no
// descriptor of /dev/fuse, the mountpoint is a plain directory again, and
// Wait returns.
func TestUnmountLeavesNothing(t *testing.T) {
	requireFUSE(t)
	n := newNode(t)
	b := newBlock(t, rawPrefix, []byte("read before the unmount"))
	n.put(t, b)
	dir := t.TempDir()
	before := fuseFDs(t)
	srv, err := bsfs.Mount(dir, n.ex, bsfs.Config{ReadTimeout: testReadTimeout})
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			skipFUSE(t, err.Error())
		}
		t.Fatal(err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			srv.Unmount()
		}
	})
	if got := fuseFDs(t); got != before+1 {
		t.Fatalf("%d descriptors of /dev/fuse while mounted, want %d", got, before+1)
	}
	if !inProcMounts(t, dir) {
		t.Fatalf("%s not in /proc/mounts while mounted", dir)
	}
	if got, err := os.ReadFile(filepath.Join(dir, b.CID.String())); err != nil || !bytes.Equal(got, b.Data) {
		t.Fatalf("read through the mount: %q, %v", got, err)
	}

	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	unmounted = true
	if got := fuseFDs(t); got != before {
		t.Errorf("%d descriptors of /dev/fuse after Unmount, want %d", got, before)
	}
	if inProcMounts(t, dir) {
		t.Errorf("%s still in /proc/mounts after Unmount", dir)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("the mountpoint after Unmount: %v, %v; want an empty directory", ents, err)
	}
	srv.Wait() // returns at once: the test's time-out catches a hang
}
