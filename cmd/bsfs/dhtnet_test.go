package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/poll"
)

// dhtReadTimeout bounds one read through the mount of content found
// through the DHT: a lookup among a handful of nodes on loopback and a
// fetch of a megabyte take well under ten seconds.
const dhtReadTimeout = 60 * time.Second

// initDHTRepo makes a repository whose node joins the DHT network through
// bootstrap alone: the default config (Routing.Type "dht") with Bootstrap
// set, listening on loopback ports of its own and serving no metrics, so
// that tests do not collide.
func initDHTRepo(t *testing.T, bootstrap []multiaddr.Multiaddr) string {
	t.Helper()
	repo := t.TempDir()
	ok(t, repo, "", "init")
	boot := make([]string, len(bootstrap))
	for i, a := range bootstrap {
		boot[i] = a.String()
	}
	editConfig(t, repo, map[string]any{
		"Bootstrap": boot,
		"Addresses": map[string]any{"Swarm": []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}},
		"Metrics":   map[string]any{"Address": ""},
	})
	return repo
}

// editConfig sets top-level keys of the repository's config file.
func editConfig(t *testing.T, repo string, set map[string]any) {
	t.Helper()
	file := filepath.Join(repo, "config")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		cfg[k] = v
	}
	if raw, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// swarmPeers returns the peer IDs bsfs on repo is connected to.
func swarmPeers(t *testing.T, repo string) []string {
	t.Helper()
	var ids []string
	for _, l := range lines(ok(t, repo, "", "swarm", "peers")) {
		_, id, found := strings.Cut(l, "/p2p/")
		if !found {
			t.Fatalf("swarm peers line %q has no /p2p/", l)
		}
		ids = append(ids, id)
	}
	return ids
}

// waitConnected polls until bsfs on repo is, or is not, connected to p.
func waitConnected(t *testing.T, repo string, p peer.ID, want bool) {
	t.Helper()
	poll.Until(t, 20*time.Second, fmt.Sprintf("bsfs connected to %s: %v", p, want), func() bool {
		return slices.Contains(swarmPeers(t, repo), p.String()) == want
	})
}

// TestKuboDHTNetwork: a network of three Kubo DHT servers, each bootstrapped
// to the first, and two Kubo DHT clients holding content: a multi-block
// file, and a directory with a nested file. A bsfs mount whose config names
// only the first server as Bootstrap, started once the holders have
// announced their roots, reads both without being connected to the holder
// before the read: the session's provider search finds it through the DHT.
// The holders are clients and announce only their roots, so that nothing
// but that search connects bsfs to them. In the other direction, bsfs adds
// a file and provides it, and a Kubo node that joins later finds it and
// bsfs's addresses. `bsfs routing findprovs` and `bsfs routing provide` work
// against the Kubo network.
func TestKuboDHTNetwork(t *testing.T) {
	mounttest.RequireFUSE(t)
	kubos := kubotest.StartDHTNetwork(t, 3)
	first := kubos[0]
	holder := func() *kubotest.Node {
		return kubotest.StartWith(t, kubotest.Options{Routing: "dhtclient", Bootstrap: first.Addrs(), ProvideStrategy: "roots"})
	}
	fileHolder, dirHolder := holder(), holder()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// `ipfs add` announces the root before it returns (kubotest sets
	// Import.FastProvideWait); the directory's is announced again here.
	file := make([]byte, 1<<20)
	rand.Read(file)
	fileCID, err := fileHolder.Add(ctx, file, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	nested := make([]byte, 600_000)
	rand.Read(nested)
	dirCID := addDir(t, ctx, dirHolder, nested)

	repo := initDHTRepo(t, first.Addrs())
	mnt := t.TempDir()
	m := startMount(t, repo, mnt)
	// bsfs joins the DHT through the first node.
	waitConnected(t, repo, first.ID(), true)

	for _, c := range []struct {
		name, path string
		holder     *kubotest.Node
		want       []byte
	}{
		{"file", fileCID.String(), fileHolder, file},
		{"directory", dirCID.String() + "/sub/nested.bin", dirHolder, nested},
	} {
		t.Run(c.name, func(t *testing.T) {
			if slices.Contains(swarmPeers(t, repo), c.holder.ID().String()) {
				t.Fatalf("bsfs connected to the holder %s before the read", c.holder.ID())
			}
			rctx, rcancel := context.WithTimeout(ctx, dhtReadTimeout)
			defer rcancel()
			start := time.Now()
			got, err := exec.CommandContext(rctx, "cat", filepath.Join(mnt, c.path)).Output()
			took := time.Since(start)
			if err != nil {
				t.Fatalf("cat %s after %v: %v; mount's stderr: %s", c.path, took, err, m.stderr)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("cat %s: %d bytes that differ from the %d added", c.path, len(got), len(c.want))
			}
			t.Logf("cat %s through the mount, found through the Kubo DHT: %d bytes in %v", c.path, len(got), took)
			// The lookup, or the session after it, connected to the holder.
			if !slices.Contains(swarmPeers(t, repo), c.holder.ID().String()) {
				t.Fatalf("read %s without a connection to the holder %s", c.path, c.holder.ID())
			}
		})
	}
	t.Logf("bsfs stat after the reads:\n%s", ok(t, repo, "", "stat"))

	t.Run("findprovs", func(t *testing.T) {
		got := lines(ok(t, repo, "", "routing", "findprovs", "-n", "1", fileCID.String()))
		if !slices.Equal(got, []string{fileHolder.ID().String()}) {
			t.Fatalf("routing findprovs -n 1: %q, want the holder %s", got, fileHolder.ID())
		}
	})

	t.Run("kubo finds bsfs", func(t *testing.T) { checkKuboFindsBsfs(t, ctx, repo, first, m) })

	t.Run("provide of a block not held", func(t *testing.T) {
		line := fails(t, repo, "", "routing", "provide", absentCID(t, "not held "+m.id).String())
		if !strings.Contains(line, "not found locally") {
			t.Fatalf("routing provide of an absent block: %q", line)
		}
	})
	stopMount(t, m, mnt, os.Interrupt)
}

// addDir adds a directory d holding sub/nested.bin on holder and announces
// its root again.
func addDir(t *testing.T, ctx context.Context, holder *kubotest.Node, nested []byte) cid.Cid {
	t.Helper()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "sub", "nested.bin"), nested, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := holder.Run(ctx, "add", "-r", "-Q", "--cid-version=1", filepath.Join(src, "d"))
	if err != nil {
		t.Fatal(err)
	}
	dirCID, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Run(ctx, "routing", "provide", dirCID.String()); err != nil {
		t.Fatal(err)
	}
	return dirCID
}

// checkKuboFindsBsfs has bsfs on repo add a file and provide it, and checks
// that Kubo nodes find bsfs as its provider through the DHT: first, and
// one that joins the network through first afterwards.
func checkKuboFindsBsfs(t *testing.T, ctx context.Context, repo string, first *kubotest.Node, m *daemon) {
	data := make([]byte, 700_000)
	rand.Read(data)
	c, err := cid.Decode(strings.TrimSpace(ok(t, repo, "", "add", "-Q", writeFile(t, data))))
	if err != nil {
		t.Fatal(err)
	}
	if out := ok(t, repo, "", "routing", "provide", c.String()); out != "" {
		t.Errorf("routing provide printed %q, want nothing", out)
	}
	// A Kubo node finds bsfs as the provider through the DHT.
	out, err := first.Run(ctx, "routing", "findprovs", "--num-providers=1", c.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != m.id {
		t.Fatalf("ipfs routing findprovs: %q, want bsfs %s", got, m.id)
	}
	// One that joins the network now, through the first node, finds
	// bsfs as the provider and its addresses through the DHT. (Kubo
	// v0.42.0 then fetching is left out: on this loopback DHT network
	// its session at times never sends a want to the provider it found
	// or is connected to, from bsfs as from another Kubo node; Kubo
	// fetching from bsfs is TestKuboInterop's.)
	fetcher := kubotest.StartWith(t, kubotest.Options{Routing: "dhtclient", Bootstrap: first.Addrs()})
	fctx, fcancel := context.WithTimeout(ctx, dhtReadTimeout)
	defer fcancel()
	out, err = fetcher.Run(fctx, "routing", "findprovs", "--num-providers=1", c.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != m.id {
		t.Fatalf("ipfs routing findprovs on the new node: %q, want bsfs %s", got, m.id)
	}
	out, err = fetcher.Run(fctx, "routing", "findpeer", m.id)
	if err != nil {
		t.Fatal(err)
	}
	if addrs := lines(string(out)); !slices.ContainsFunc(addrs, func(a string) bool { return slices.Contains(m.addrs, a+"/p2p/"+m.id) }) {
		t.Fatalf("ipfs routing findpeer %s: %q, want one of bsfs's addresses %q", m.id, addrs, m.addrs)
	}
}

// TestRoutingCommandErrors: the routing commands need a daemon, and one
// that runs content routing, and say so; `bsfs id --verbose` adds the
// reachability after the lines of `bsfs id`.
func TestRoutingCommandErrors(t *testing.T) {
	repo := t.TempDir()
	c := absentCID(t, "routing errors").String()
	for _, args := range [][]string{{"routing", "findprovs", c}, {"routing", "provide", c}} {
		if line := fails(t, repo, "", args...); !strings.Contains(line, "needs a running daemon") {
			t.Errorf("bsfs %s without a daemon: %q", strings.Join(args, " "), line)
		}
	}
	if line := fails(t, repo, "", "routing", "findprovs", "-n", "0", c); !strings.Contains(line, "-n 0") {
		t.Errorf("findprovs -n 0: %q", line)
	}

	d := startDaemon(t, repo, "--listen", "/ip4/127.0.0.1/tcp/0", "--routing", "none", "--metrics", "")
	for _, args := range [][]string{{"routing", "findprovs", c}, {"routing", "provide", c}} {
		if line := fails(t, repo, "", args...); !strings.Contains(line, "no content routing") {
			t.Errorf("bsfs %s with routing off: %q", strings.Join(args, " "), line)
		}
	}

	plain := lines(ok(t, repo, "", "id"))
	verbose := lines(ok(t, repo, "", "id", "--verbose"))
	if len(verbose) != len(plain)+1 || !slices.Equal(verbose[:len(plain)], plain) {
		t.Fatalf("id --verbose:\n%q\nwant the lines of id:\n%q\nand a reachability line", verbose, plain)
	}
	// AutoNAT cannot have found this node reachable: it listens on
	// loopback and no peer offering AutoNAT has dialled it.
	if last := verbose[len(verbose)-1]; last != "Reachability: unknown" && last != "Reachability: private" {
		t.Fatalf("id --verbose last line %q, want Reachability: unknown or private", last)
	}
	d.stopClean(t)
}
