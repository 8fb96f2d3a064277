package kubotest

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/internal/blocktest"
)

// TestTwoNodesExchange starts two Kubo nodes, connects them and moves a
// block and a 1 MiB UnixFS file from one to the other over Bitswap, which
// shows that the restricted configuration keeps Bitswap working.
func TestTwoNodesExchange(t *testing.T) {
	start := time.Now()
	a := Start(t)
	tookA := time.Since(start)
	start = time.Now()
	b := Start(t)
	t.Logf("Start took %v and %v", tookA, time.Since(start))
	nodes := []*Node{a, b}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	for _, n := range nodes {
		checkLoopbackOnly(t, ctx, n)
	}

	connectTCP(t, ctx, a, b)
	moveBlock(t, ctx, a, b)
	moveFile(t, ctx, a, b)

	// Everything b got came from a over Bitswap: 1 block + 5 file blocks.
	var stat struct{ BlocksSent uint64 }
	out, err := a.Run(ctx, "bitswap", "stat", "--enc=json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &stat); err != nil {
		t.Fatalf("bitswap stat %q: %v", out, err)
	}
	if stat.BlocksSent < 6 {
		t.Fatalf("a's Bitswap sent %d blocks, want at least 6", stat.BlocksSent)
	}

	// The repository holds blocks in flatfs under Path()/blocks.
	if _, err := os.Stat(filepath.Join(b.Path(), "blocks", "SHARDING")); err != nil {
		t.Fatalf("b's flatfs: %v", err)
	}
}

// connectTCP connects b to a over TCP, explicitly so the test does not
// depend on QUIC, and checks each lists the other as a peer.
func connectTCP(t *testing.T, ctx context.Context, a, b *Node) {
	t.Helper()
	tcp := addrWith(t, a, multiaddr.P_TCP)
	if err := b.SwarmConnect(ctx, tcp); err != nil {
		t.Fatalf("SwarmConnect(%s): %v", tcp, err)
	}
	peers, err := b.SwarmPeers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(peers, a.ID()) {
		t.Fatalf("b's peers %v do not include a %s", peers, a.ID())
	}
	peers, err = a.SwarmPeers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(peers, b.ID()) {
		t.Fatalf("a's peers %v do not include b %s", peers, b.ID())
	}
}

// moveBlock puts one block in a and gets it from b.
func moveBlock(t *testing.T, ctx context.Context, a, b *Node) {
	t.Helper()
	block := []byte("bsfs kubotest block " + a.ID().String())
	c, err := a.BlockPut(ctx, block, "raw", "sha2-256")
	if err != nil {
		t.Fatalf("BlockPut: %v", err)
	}
	want := cid.NewCidV1(cid.Raw, blocktest.Hash(t, block))
	if !c.Equals(want) {
		t.Fatalf("BlockPut returned %s, want %s", c, want)
	}
	if ok, err := a.HasLocal(ctx, c); err != nil || !ok {
		t.Fatalf("a.HasLocal(%s) = %v, %v; want true", c, ok, err)
	}
	// HasLocal must not fetch: asked twice while connected to a, b still
	// does not hold the block.
	for range 2 {
		if ok, err := b.HasLocal(ctx, c); err != nil || ok {
			t.Fatalf("b.HasLocal(%s) before BlockGet = %v, %v; want false", c, ok, err)
		}
	}
	got, err := b.BlockGet(ctx, c)
	if err != nil {
		t.Fatalf("b.BlockGet(%s): %v", c, err)
	}
	if !bytes.Equal(got, block) {
		t.Fatalf("b.BlockGet(%s) = %q, want %q", c, got, block)
	}
	if ok, err := b.HasLocal(ctx, c); err != nil || !ok {
		t.Fatalf("b.HasLocal(%s) after BlockGet = %v, %v; want true", c, ok, err)
	}
}

// moveFile adds a 1 MiB file, 4 leaves of 256 KiB and a root, to a and
// reads it from b.
func moveFile(t *testing.T, ctx context.Context, a, b *Node) {
	t.Helper()
	data := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{'b', 's', 'f', 's'})
	_, _ = rng.Read(data)
	root, err := a.Add(ctx, data, 1, true)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if root.Version() != 1 || root.Type() != cid.DagProtobuf {
		t.Fatalf("Add returned %s, want a CIDv1 dag-pb root", root)
	}
	got, err := b.Cat(ctx, root)
	if err != nil {
		t.Fatalf("b.Cat(%s): %v", root, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("b.Cat(%s) returned %d bytes that differ from the %d added", root, len(got), len(data))
	}
}

// checkLoopbackOnly checks the node's configuration and that it listens on
// 127.0.0.1 only.
func checkLoopbackOnly(t *testing.T, ctx context.Context, n *Node) {
	t.Helper()
	if len(n.Addrs()) == 0 {
		t.Fatalf("%s has no addresses", n.ID())
	}
	for _, a := range n.Addrs() {
		if !strings.HasPrefix(a.String(), "/ip4/127.0.0.1/") || !strings.HasSuffix(a.String(), "/p2p/"+n.ID().String()) {
			t.Errorf("address %s is not /ip4/127.0.0.1/.../p2p/%s", a, n.ID())
		}
	}
	out, err := n.Run(ctx, "swarm", "addrs", "listen")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Fields(string(out)) {
		if !strings.HasPrefix(line, "/ip4/127.0.0.1/") {
			t.Errorf("%s listens on %s", n.ID(), line)
		}
	}
	for key, want := range map[string]string{
		"Routing.Type":        "none",
		"Bootstrap":           "[]",
		"AutoNAT.ServiceMode": "disabled",
		"Addresses.Gateway":   "[]",
	} {
		out, err := n.Run(ctx, "config", key)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("config %s = %q, want %q", key, got, want)
		}
	}
}

// addrWith returns the node's address that uses protocol code p.
func addrWith(t *testing.T, n *Node, p int) multiaddr.Multiaddr {
	t.Helper()
	for _, a := range n.Addrs() {
		if _, err := a.ValueForProtocol(p); err == nil {
			return a
		}
	}
	t.Fatalf("%s has no address with protocol %d among %v", n.ID(), p, n.Addrs())
	return nil
}

func TestSetPath(t *testing.T) {
	cfg := map[string]any{"A": map[string]any{"B": 1.0}, "N": nil, "S": "x"}
	if err := setPath(cfg, "A.C", true); err != nil {
		t.Fatal(err)
	}
	if err := setPath(cfg, "N.D.E", "v"); err != nil {
		t.Fatal(err)
	}
	if err := setPath(cfg, "Top", 2); err != nil {
		t.Fatal(err)
	}
	if err := setPath(cfg, "S.T", 1); err == nil {
		t.Fatal("setPath through a string succeeded")
	}
	got, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"A":{"B":1,"C":true},"N":{"D":{"E":"v"}},"S":"x","Top":2}`
	if string(got) != want {
		t.Fatalf("config = %s, want %s", got, want)
	}
}

func TestCachePathFollowsBSFSCache(t *testing.T) {
	t.Setenv("BSFS_CACHE", "/cache/dir")
	got, err := cachePath()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/cache/dir/kubo-v" + Version + "/ipfs"; got != want {
		t.Fatalf("cachePath() = %q, want %q", got, want)
	}
}

func TestFindRejectsBrokenBinary(t *testing.T) {
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "no-such-ipfs"))
	if p, err := find(); err == nil {
		t.Fatalf("find() = %q with a missing %s binary, want an error", p, EnvBinary)
	}
}

// TestDHTNetwork starts three DHT servers bootstrapped to the first and
// checks their config and that the last one finds, through the DHT, the
// provider of what the second one added.
func TestDHTNetwork(t *testing.T) {
	nodes := StartDHTNetwork(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for _, n := range nodes[1:] {
		out, err := n.Run(ctx, "config", "Bootstrap")
		if err != nil {
			t.Fatal(err)
		}
		var boot []string
		if err := json.Unmarshal(out, &boot); err != nil {
			t.Fatal(err)
		}
		if len(boot) != len(nodes[0].Addrs()) {
			t.Fatalf("Bootstrap %q, want the first node's %v", boot, nodes[0].Addrs())
		}
		for i, a := range nodes[0].Addrs() {
			if boot[i] != a.String() {
				t.Fatalf("Bootstrap %q, want the first node's %v", boot, nodes[0].Addrs())
			}
		}
		for key, want := range map[string]string{"Routing.Type": "dhtserver", "Routing.LoopbackAddressesOnLanDHT": "true"} {
			out, err := n.Run(ctx, "config", key)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("config %s = %q, want %q", key, got, want)
			}
		}
	}
	data := []byte("bsfs kubotest dht network " + nodes[1].ID().String())
	c, err := nodes[1].Add(ctx, data, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := nodes[2].Run(ctx, "routing", "findprovs", "--num-providers=1", c.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != nodes[1].ID().String() {
		t.Fatalf("findprovs from the third node: %q, want the second %s", got, nodes[1].ID())
	}
}

// TestConfigureRefusesOutsideBootstrap: a bootstrap peer off 127.0.0.1 is
// refused before the daemon could dial it.
func TestConfigureRefusesOutsideBootstrap(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := multiaddr.NewMultiaddr("/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	if err != nil {
		t.Fatal(err)
	}
	if err := Configure(dir, Options{Bootstrap: []multiaddr.Multiaddr{a}}); err == nil {
		t.Fatal("Configure accepted a bootstrap peer on 10.0.0.1")
	}
}
