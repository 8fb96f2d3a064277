package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
)

// kuboPublishDir adds a directory holding file with data to k, publishes
// it under k's key with the given record TTL, and returns k's name.
func kuboPublishDir(ctx context.Context, t *testing.T, k *kubotest.Node, data []byte, ttl time.Duration) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := k.Run(ctx, "add", "-r", "-Q", "--cid-version=1", dir)
	if err != nil {
		t.Fatalf("ipfs add: %v: %s", err, out)
	}
	c := strings.TrimSpace(string(out))
	out, err = k.Run(ctx, "name", "publish", "--ttl", ttl.String(), "/ipfs/"+c)
	if err != nil {
		t.Fatalf("ipfs name publish: %v: %s", err, out)
	}
	m := publishedLine.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		t.Fatalf("ipfs name publish printed %q", out)
	}
	return m[1]
}

// TestMountIPNSKuboDHT: a name a Kubo node publishes on a DHT of Kubo
// servers reads through the mount of a bsfs daemon on the same DHT,
// DIR/ipns/<name>/file; once Kubo publishes a new record and its TTL has
// passed, the same path reads the new content. The test logs the time to
// the first byte of a name resolved through the DHT and of a kept one.
func TestMountIPNSKuboDHT(t *testing.T) {
	mounttest.RequireFUSE(t)
	kubos := kubotest.StartDHTNetwork(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	repo, dir := initDHTRepo(t, kubos[0].Addrs()), t.TempDir()
	d := startDaemon(t, repo, "--mount", dir)
	defer d.stopClean(t)
	waitConnected(t, repo, kubos[0].ID(), true)
	// The content's provider is a peer already: this test is about names.
	ok(t, repo, "", "swarm", "connect", kubos[1].Addrs()[0].String()+"/p2p/"+kubos[1].ID().String())

	first := []byte("first version\n")
	name := kuboPublishDir(ctx, t, kubos[1], first, 3*time.Second)
	path := filepath.Join(dir, "ipns", name, "file")
	start := time.Now()
	readMount(t, path, first)
	t.Logf("time to first byte of %s through the DHT: %v", name, time.Since(start))
	start = time.Now()
	readMount(t, path, first)
	t.Logf("time to first byte of %s kept: %v", name, time.Since(start))

	second := []byte("second version\n")
	if again := kuboPublishDir(ctx, t, kubos[1], second, 3*time.Second); again != name {
		t.Fatalf("republished under %s, want %s", again, name)
	}
	poll.UntilNil(t, 2*time.Minute, func() error {
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, second) {
			return fmt.Errorf("read %q after republishing, want %q", got, second)
		}
		return nil
	})
}

// TestMountDNSLink: with a DNS-over-HTTPS resolver on loopback
// (DNS.Resolvers), DIR/ipns/<domain>/file reads the file its DNSLink
// names, a chain of DNSLinks resolves, and a loop is ENOENT with a log
// line naming the domain.
func TestMountDNSLink(t *testing.T) {
	mounttest.RequireFUSE(t)
	doh := routingtest.NewDoH(t)
	repo, dir := t.TempDir(), t.TempDir()
	ok(t, repo, "", "init")
	editConfig(t, repo, map[string]any{"DNS": map[string]any{"Resolvers": map[string]string{".": doh.URL()}}})
	data := []byte("reached by a DNSLink\n")
	src := filepath.Join(t.TempDir(), "site")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "file"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := strings.TrimSpace(ok(t, repo, "", "add", "-Q", "-r", src))
	doh.SetTXT("_dnslink.example.test", 60, "dnslink=/ipfs/"+c)
	doh.SetTXT("_dnslink.chain.test", 60, "dnslink=/ipns/example.test")
	doh.SetTXT("_dnslink.loop-a.test", 60, "dnslink=/ipns/loop-b.test")
	doh.SetTXT("_dnslink.loop-b.test", 60, "dnslink=/ipns/loop-a.test")

	m := startMount(t, repo, dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	readMount(t, filepath.Join(dir, "ipns", "example.test", "file"), data)
	readMount(t, filepath.Join(dir, "ipns", "chain.test", "file"), data)
	if _, err := os.Stat(filepath.Join(dir, "ipns", "loop-a.test", "file")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat through a DNSLink loop: %v, want ENOENT", err)
	}
	poll.UntilNil(t, waitTimeout, func() error {
		if !m.logged("loop-a.test") {
			return fmt.Errorf("no log line names loop-a.test; stderr: %s", m.stderr)
		}
		return nil
	})
	stopMount(t, m, dir, syscall.SIGINT)
}
