// Package treetest writes the directory trees that tests add, copy and
// compare.
package treetest

import (
	"os"
	"path/filepath"
	"testing"
)

// Tree is a directory tree to write. Names are slash-separated paths
// below the root; the directories above each are made as needed.
type Tree struct {
	Files map[string]string // name -> contents, mode 0644
	Dirs  []string          // empty directories
	Links map[string]string // name -> symlink target
}

// Write makes tr in a new directory "tree" of the test's and returns
// its path.
func (tr Tree) Write(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	mkdir := func(p string) {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(root)
	for name, data := range tr.Files {
		p := filepath.Join(root, filepath.FromSlash(name))
		mkdir(filepath.Dir(p))
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range tr.Dirs {
		mkdir(filepath.Join(root, filepath.FromSlash(name)))
	}
	for name, target := range tr.Links {
		p := filepath.Join(root, filepath.FromSlash(name))
		mkdir(filepath.Dir(p))
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
