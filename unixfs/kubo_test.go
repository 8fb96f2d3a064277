package unixfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/storetest"
)

// kuboAdd runs `ipfs add --cid-version=1 -Q [args] path` on k.
func kuboAdd(t *testing.T, k *kubotest.Node, path string, args ...string) cid.Cid {
	t.Helper()
	out, err := k.Run(t.Context(), append(append([]string{"add", "--cid-version=1", "-Q"}, args...), path)...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ipfs add printed %q: %v", out, err)
	}
	return c
}

// AddFile and AddPath give the CIDs `ipfs add --cid-version=1` gives.
func TestKuboSameCIDs(t *testing.T) {
	k := kubotest.Start(t)
	bs := storetest.New(t)

	for _, n := range []int{0, 1, chunkSize, chunkSize + 1, 10 << 20, 45 << 20} {
		t.Run(fmt.Sprintf("file of %d bytes", n), func(t *testing.T) {
			data := blocktest.SeededBytes(n, uint64(n)+100)
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want := kuboAdd(t, k, path)
			got, err := AddFile(t.Context(), bs, bytes.NewReader(data), AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equals(want) {
				t.Errorf("AddFile: %s, Kubo: %s", got, want)
			}
			if got, err := AddPath(t.Context(), bs, path, AddOptions{}); err != nil || !got.Equals(want) {
				t.Errorf("AddPath: %s (%v), Kubo: %s", got, err, want)
			}
		})
	}

	t.Run("tree with a symlink, an empty and a hidden file", func(t *testing.T) {
		root := writeTree(t)
		want := kuboAdd(t, k, root, "-r")
		got, err := AddPath(t.Context(), bs, root, AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equals(want) {
			t.Errorf("AddPath: %s, Kubo: %s", got, want)
		}
		want = kuboAdd(t, k, root, "-r", "--hidden")
		if got, err := AddPath(t.Context(), bs, root, AddOptions{Hidden: true}); err != nil || !got.Equals(want) {
			t.Errorf("AddPath with Hidden: %s (%v), Kubo --hidden: %s", got, err, want)
		}
	})

	// Kubo shards a directory once its link names and CIDs add up to more
	// than 256 KiB: 1200 names of 200 bytes are over, 1100 under.
	for _, tc := range []struct {
		entries int
		sharded bool
	}{{10, false}, {1100, false}, {1200, true}} {
		t.Run(fmt.Sprintf("directory of %d entries", tc.entries), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range tc.entries {
				name := fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 195))
				if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "entry %d\n", i), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := kuboAdd(t, k, dir, "-r")
			got, err := AddPath(t.Context(), bs, dir, AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equals(want) {
				t.Errorf("AddPath: %s, Kubo: %s", got, want)
			}
			d, err := decode(mustGet(t, bs, got))
			if err != nil {
				t.Fatal(err)
			}
			if d.isHAMT() != tc.sharded {
				t.Errorf("root sharded: %v, want %v", d.isHAMT(), tc.sharded)
			}
			ents, err := New(Local(bs), Config{}).ReadDir(t.Context(), got)
			if err != nil || len(ents) != tc.entries {
				t.Errorf("ReadDir: %d entries (%v), want %d", len(ents), err, tc.entries)
			}
		})
	}
}
