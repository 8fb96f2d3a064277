package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/internal/blocktest"
)

func TestRoots(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if roots, err := r.Roots(); err != nil || len(roots) != 0 {
		t.Fatalf("new repository: roots %v, %v", roots, err)
	}
	a, b := blocktest.CID(t, fmt.Sprintf("root %d", 1)), blocktest.CID(t, fmt.Sprintf("root %d", 2))
	for _, c := range []cid.Cid{a, b, a} {
		if err := r.AddRoot(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.AddRoot(cid.Undef); err == nil {
		t.Error("AddRoot of an undefined CID succeeded")
	}
	if roots, err := r.Roots(); err != nil || !slices.Equal(roots, []cid.Cid{a, b}) {
		t.Errorf("roots %v, %v; want %v", roots, err, []cid.Cid{a, b})
	}

	// A crash in the middle of a write leaves a partial line: it is
	// ignored, and the next root gets a line of its own.
	path := filepath.Join(dir, rootsFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(blocktest.CID(t, fmt.Sprintf("root %d", 3)).String()[:20]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := blocktest.CID(t, fmt.Sprintf("root %d", 4))
	if err := r.AddRoot(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// Durable across opens.
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if roots, err := r.Roots(); err != nil || !slices.Equal(roots, []cid.Cid{a, b, c}) {
		t.Errorf("after reopening: roots %v, %v; want %v", roots, err, []cid.Cid{a, b, c})
	}
}

// Concurrent AddRoot calls lose nothing.
func TestRootsConcurrent(t *testing.T) {
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var want []cid.Cid
	for i := range 50 {
		want = append(want, blocktest.CID(t, fmt.Sprintf("root %d", i)))
	}
	var wg sync.WaitGroup
	for _, c := range want {
		wg.Go(func() {
			if err := r.AddRoot(c); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := r.Roots()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, cmpCID)
	slices.SortFunc(want, cmpCID)
	if !slices.Equal(got, want) {
		t.Errorf("%d roots after 50 concurrent adds, want all 50", len(got))
	}
}

func cmpCID(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) }
