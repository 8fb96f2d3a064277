package main

import (
	"fmt"
	"os"

	"crypto/rand"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/bsfs/bsfs/internal/poll"
	repopkg "github.com/bsfs/bsfs/repo"
)

// TestStatLedgerWantlistMetrics fetches a file from A to B, then checks
// what stat, ledger, wantlist --peer and the metrics endpoint report.
func TestStatLedgerWantlistMetrics(t *testing.T) {
	repoA, repoB := t.TempDir(), t.TempDir()
	a := startDaemon(t, repoA, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")
	b := startDaemon(t, repoB, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0")
	if a.metrics != "" || b.metrics == "" {
		t.Fatalf("metrics URLs: A %q (want none), B %q", a.metrics, b.metrics)
	}
	data := make([]byte, 1<<20+1000)
	rand.Read(data)
	root := strings.TrimSpace(ok(t, repoA, string(data), "add", "-Q", "-"))
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))
	if got := ok(t, repoB, "", "cat", root); got != string(data) {
		t.Fatalf("cat on B: %d bytes, want %d", len(got), len(data))
	}

	stat := ok(t, repoB, "", "stat")
	for _, want := range []string{"blocks received:", "data received:", "dup blocks received: 0", "partners:            1"} {
		if !strings.Contains(stat, want) {
			t.Errorf("stat lacks %q:\n%s", want, stat)
		}
	}
	if strings.Contains(stat, "blocks received:     0\n") {
		t.Errorf("stat shows nothing received:\n%s", stat)
	}
	ledger := ok(t, repoB, "", "ledger", a.id)
	if !strings.Contains(ledger, "Ledger for "+a.id) || strings.Contains(ledger, "bytes received:  0\n") {
		t.Errorf("ledger of A on B:\n%s", ledger)
	}
	fails(t, repoB, "", "ledger", "not-a-peer")

	// A block nobody has: B wants it, and A sees it in B's wantlist.
	missing := "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	get := exec.Command(bsfsBin, "block", "get", "--timeout", "20s", missing)
	get.Env = append(get.Environ(), "BSFS_PATH="+repoB)
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { get.Process.Kill(); get.Wait() }()
	poll.Until(t, waitTimeout, fmt.Sprintf("A sees %s in B's wantlist", missing), func() bool {
		return strings.Contains(ok(t, repoA, "", "wantlist", "--peer", b.id), missing)
	})

	resp, err := http.Get(b.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"bsfs_bitswap_blocks_received_total", "bsfs_get_block_seconds_count", "bsfs_bitswap_peers 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), "bsfs_bitswap_blocks_received_total 0\n") {
		t.Error("metrics show no blocks received")
	}
}

// TestAPISocketOwnerOnly: the daemon's API socket is reachable by its
// owner only, and metrics listen on loopback unless asked otherwise.
func TestAPISocketOwnerOnly(t *testing.T) {
	repoPath := t.TempDir()
	d := startDaemon(t, repoPath, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0")
	fi, err := os.Stat(repopkg.APISocketPath(repoPath))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("API socket mode %o, want 600", perm)
	}
	if !strings.HasPrefix(d.metrics, "http://127.0.0.1:") {
		t.Errorf("metrics at %q, want loopback", d.metrics)
	}
	if msg := fails(t, t.TempDir(), "", "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "0.0.0.0:0"); msg == "" {
		t.Error("no error for metrics on 0.0.0.0")
	}
	d.stopClean(t)
}
