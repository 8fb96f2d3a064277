package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
)

// providerRouter starts a delegated router that names the peer id at addr
// as the provider of root over transport (transport-bitswap when none is
// given) and of nothing else.
func providerRouter(t *testing.T, root cid.Cid, id, addr string, transport ...string) *routingtest.Router {
	t.Helper()
	if len(transport) == 0 {
		transport = []string{"transport-bitswap"}
	}
	r := routingtest.NewRouter(t, false)
	r.Add(root, map[string]any{"Schema": "peer", "ID": id, "Addrs": []string{addr}, "Protocols": transport})
	return r
}

// setRouting writes Routing into the config of the repository at repo,
// creating the repository first.
func setRouting(t *testing.T, repo string, routing map[string]any) {
	t.Helper()
	ok(t, repo, "", "init")
	path := filepath.Join(repo, "config")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["Routing"] = routing
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCatThroughDelegatedRouter: daemon B, whose config has Routing.Type
// "delegated" (then "auto") and, as Routing.DelegatedRouters, a router
// that fails and one that names daemon A, cats a file added on A without
// any connection to A beforehand; its log names the failing router.
func TestCatThroughDelegatedRouter(t *testing.T) {
	for _, typ := range []string{"delegated", "auto"} {
		t.Run(typ, func(t *testing.T) {
			repoA, repoB := t.TempDir(), t.TempDir()
			a := startDaemon(t, repoA)
			path, data := randomFile(t, 3<<20+5)
			root, err := cid.Decode(strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path)))
			if err != nil {
				t.Fatal(err)
			}
			good := providerRouter(t, root, a.id, a.tcpAddr(t))
			bad := routingtest.Faulty(t, routingtest.Failing500)
			setRouting(t, repoB, map[string]any{"Type": typ, "DelegatedRouters": []string{bad, good.URL}})
			b := startDaemon(t, repoB)
			if peers := ok(t, repoB, "", "swarm", "peers"); strings.Contains(peers, a.id) {
				t.Fatalf("B connected to A before the cat: %s", peers)
			}

			if got := ok(t, repoB, "", "cat", root.String()); got != string(data) {
				t.Fatalf("cat on B: %d bytes, want the %d added on A", len(got), len(data))
			}
			if good.Asked(root) == 0 {
				t.Error("the router was never asked")
			}
			poll.UntilNil(t, readyTimeout, func() error {
				if !routingtest.Warned(b.stderr.String(), bad, root) {
					return fmt.Errorf("B's log names no failure of router %s for %s:\n%s", bad, root, b.stderr)
				}
				return nil
			})
			b.stopClean(t)
			a.stopClean(t)
		})
	}
}

// TestRoutingConfigRefused: an unknown routing type, in the config or in
// --routing, and a bad router URL stop the daemon with an error naming
// the key or the flag.
func TestRoutingConfigRefused(t *testing.T) {
	cases := []struct {
		name    string
		routing map[string]any
		args    []string
		want    string
	}{
		{"ConfigType", map[string]any{"Type": "dhtclient"}, nil, "Routing.Type"},
		{"ConfigRouter", map[string]any{"Type": "auto", "DelegatedRouters": []string{"127.0.0.1:8080"}}, nil, "Routing.DelegatedRouters"},
		{"Flag", nil, []string{"--routing", "dhtclient"}, "--routing"},
		{"FlagDelegatedNoRouter", nil, []string{"--routing", "delegated"}, "Routing.DelegatedRouters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			if tc.routing != nil {
				setRouting(t, repo, tc.routing)
			}
			args := append([]string{"daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", ""}, tc.args...)
			if line := fails(t, repo, "", args...); !strings.Contains(line, tc.want) {
				t.Errorf("error %q does not name %s", line, tc.want)
			}
		})
	}
}

// TestGatewayThroughDelegatedRouter: a delegated router names a Kubo node's
// HTTP gateway, and only that, as the provider of a multi-block file. A
// bsfs daemon with no libp2p connection to Kubo reads it byte for byte with
// cat and through a mount, every block over HTTP, and bsfs stat says so.
func TestGatewayThroughDelegatedRouter(t *testing.T) {
	mounttest.RequireFUSE(t)
	kubo := kubotest.StartWith(t, kubotest.Options{Gateway: true})
	_, data := randomFile(t, 3<<20+7)
	root, err := kubo.Add(t.Context(), data, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	router := providerRouter(t, root, kubo.ID().String(), kubo.GatewayAddr().String(), "transport-ipfs-gateway-http")
	repo := t.TempDir()
	setRouting(t, repo, map[string]any{"Type": "delegated", "DelegatedRouters": []string{router.URL}})
	d := startDaemon(t, repo)

	start := time.Now()
	if got := ok(t, repo, "", "cat", root.String()); got != string(data) {
		t.Fatalf("cat: %d bytes, want the %d Kubo added", len(got), len(data))
	}
	t.Logf("cat of %d bytes from Kubo's gateway took %s", len(data), time.Since(start).Round(time.Millisecond))
	if router.Asked(root) == 0 {
		t.Error("the router was never asked")
	}
	if peers := ok(t, repo, "", "swarm", "peers"); strings.Contains(peers, kubo.ID().String()) {
		t.Errorf("bsfs connected to Kubo over libp2p: %s", peers)
	}
	stat := ok(t, repo, "", "stat")
	t.Logf("bsfs stat after the cat:\n%s", stat)
	blocks := statField(t, stat, "blocks via http")
	if blocks < 13 { // 3 MiB in 256 KiB leaves and their root
		t.Errorf("bsfs stat counts %d blocks via http, want every block of the file", blocks)
	}

	// Through a mount of the daemon's node, once the blocks are gone.
	ok(t, repo, "", "gc")
	dir := t.TempDir()
	m := startMount(t, repo, dir)
	readMount(t, filepath.Join(dir, root.String()), data)
	if again := statField(t, ok(t, repo, "", "stat"), "blocks via http"); again < 2*blocks {
		t.Errorf("after the read through the mount bsfs stat counts %d blocks via http, want the %d of the cat twice", again, blocks)
	}
	stopMount(t, m, dir, syscall.SIGINT)
	d.stopClean(t)
}

// statField returns the number on the line of bsfs stat's output that
// starts with name and a colon.
func statField(t *testing.T, stat, name string) int {
	t.Helper()
	for line := range strings.Lines(stat) {
		if rest, found := strings.CutPrefix(strings.TrimSpace(line), name); found {
			f := strings.Fields(strings.TrimPrefix(rest, ":"))
			if len(f) > 0 {
				if n, err := strconv.Atoi(strings.TrimSuffix(f[0], ",")); err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("bsfs stat has no %q line:\n%s", name, stat)
	return 0
}
