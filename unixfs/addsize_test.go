package unixfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAddSizeCountsWhatAddPathReads(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 10)
	write("sub/b", 20)
	write(".hidden", 100)
	write(".git/config", 1000)
	write("sub/.dot", 10000)
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hidden bool
		want   int64
	}{{false, 30}, {true, 11130}} {
		got, err := AddSize(dir, tc.hidden)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("AddSize(hidden=%v) = %d, want %d", tc.hidden, got, tc.want)
		}
	}
	if got, err := AddSize(filepath.Join(dir, ".hidden"), false); err != nil || got != 100 {
		t.Errorf("AddSize of a hidden file named itself = %d, %v; want 100", got, err)
	}
	if _, err := AddSize(filepath.Join(dir, "absent"), false); err == nil {
		t.Error("AddSize of an absent path: no error")
	}
}
