package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/internal/poll"
	repopkg "github.com/bsfs/bsfs/repo"
)

// findprovsTimeout bounds the wait for a provider record: on two nodes on
// loopback an announcement lands in well under a second.
const findprovsTimeout = 30 * time.Second

// TestProvideStrategy: for each Provide.Strategy, a daemon A, bootstrapped
// to a daemon B (the DHT network of two), holds a file added and a block
// put before it started, adds a second file and fetches a block from B
// while running. B's `routing findprovs` finds A for the roots of both
// files ("roots"), also for a leaf of each ("pinned"), and also for the
// unpinned block put offline and the block fetched from B ("all"); what the
// strategy leaves out, B does not find A for, once it has found A for all
// the rest.
func TestProvideStrategy(t *testing.T) {
	for _, strategy := range repopkg.ProvideStrategies() {
		t.Run(strategy, func(t *testing.T) {
			repoB := initDHTRepo(t, nil)
			editConfig(t, repoB, map[string]any{"Provide": map[string]any{"Strategy": repopkg.ProvideRoots}})
			b := startDaemon(t, repoB)
			fetched := strings.TrimSpace(ok(t, repoB, "only B holds this block, "+time.Now().String(), "block", "put"))

			addr, err := multiaddr.NewMultiaddr(b.tcpAddr(t))
			if err != nil {
				t.Fatal(err)
			}
			repoA := initDHTRepo(t, []multiaddr.Multiaddr{addr})
			editConfig(t, repoA, map[string]any{"Provide": map[string]any{"Strategy": strategy}})
			// Before the daemon: a file (pinned) and a block (not).
			root1, leaf1 := addFileOf(t, repoA, 600<<10)
			stray := strings.TrimSpace(ok(t, repoA, "a block A holds unpinned, "+time.Now().String(), "block", "put"))

			a := startDaemon(t, repoA)
			root2, leaf2 := addFileOf(t, repoA, 300<<10)
			if got := ok(t, repoA, "", "block", "get", "--timeout", "30s", fetched); !strings.HasPrefix(got, "only B holds") {
				t.Fatalf("block get on A: %q", got)
			}

			cids := map[string]string{"root1": root1, "leaf1": leaf1, "stray": stray, "root2": root2, "leaf2": leaf2, "fetched": fetched}
			want := map[string][]string{
				repopkg.ProvideRoots:  {"root1", "root2"},
				repopkg.ProvidePinned: {"root1", "leaf1", "root2", "leaf2"},
				repopkg.ProvideAll:    {"root1", "leaf1", "stray", "root2", "leaf2", "fetched"},
			}[strategy]
			foundA := func(c string) bool {
				return slices.Contains(lines(ok(t, repoB, "", "routing", "findprovs", "-n", "1", c)), a.id)
			}
			for _, name := range want {
				poll.UntilNil(t, findprovsTimeout, func() error {
					if !foundA(cids[name]) {
						return fmt.Errorf("B finds no record of A for %s %s after %v; A's stderr: %s", name, cids[name], findprovsTimeout, a.stderr)
					}
					return nil
				})
			}
			for name, c := range cids {
				if !slices.Contains(want, name) && foundA(c) {
					t.Errorf("B finds A for %s %s, which strategy %q does not announce", name, c, strategy)
				}
			}
			a.stopClean(t)
			b.stopClean(t)
		})
	}
}

// addFileOf adds a random file of size bytes on repo and returns its root
// and the CID of its first leaf (a raw block of the first chunk), which it
// checks is stored.
func addFileOf(t *testing.T, repo string, size int) (root, leaf string) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	root = strings.TrimSpace(ok(t, repo, "", "add", "-Q", path))
	h, err := mh.Sum(data[:256<<10], mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	leaf = cid.NewCidV1(cid.Raw, h).String()
	ok(t, repo, "", "block", "stat", leaf)
	return root, leaf
}
