package fs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/mounttest"
)

// TestMountOnLiveMount mounts at a directory where a live mount already
// is. Over a bsfs mount, Mount and Check fail with ErrMountPointInUse
// naming it; the directory still has one mount, which keeps serving. Over
// a tmpfs, any other live mount, likewise.
func TestMountOnLiveMount(t *testing.T) {
	n := newNode(t)
	b := blocktest.NewBlock(t, rawPrefix, []byte("served by the first mount"))
	n.put(t, b)
	dir := mount(t, n.ex, bsfs.Config{})

	srv, err := bsfs.Mount(dir, n.ex, bsfs.Config{ReadTimeout: testReadTimeout})
	if err == nil {
		mounts := mounttest.At(t, dir)
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
	if k := mounttest.At(t, dir); k != 1 {
		t.Errorf("%d mounts at %s, want 1", k, dir)
	}
	if got, err := os.ReadFile(filepath.Join(dir, b.CID.String())); err != nil || !bytes.Equal(got, b.Data) {
		t.Errorf("read through the first mount: %q, %v", got, err)
	}

	tmp := t.TempDir()
	mounttest.Tmpfs(t, tmp, "1m")
	srv, err = bsfs.Mount(tmp, n.ex, bsfs.Config{ReadTimeout: testReadTimeout})
	if err == nil {
		srv.Unmount()
		t.Fatalf("Mount at a tmpfs succeeded")
	}
	if !errors.Is(err, bsfs.ErrMountPointInUse) || !strings.Contains(err.Error(), "live mount of tmpfs (type tmpfs)") {
		t.Errorf("mount at a tmpfs: %v, want ErrMountPointInUse naming the tmpfs", err)
	}
	if k := mounttest.At(t, tmp); k != 1 {
		t.Errorf("%d mounts at %s, want 1", k, tmp)
	}
}
