package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
)

// publishedLine is what `name publish` prints, Kubo's and bsfs's alike.
var publishedLine = regexp.MustCompile(`^Published to (k51[a-z0-9]+): (/ipfs/\S+)$`)

// TestNameKuboDHT: three Kubo DHT servers, each bootstrapped to the first,
// and a bsfs daemon bootstrapped to the first too. A name Kubo publishes
// (`ipfs name publish`) is resolved by `bsfs name resolve`; names bsfs
// publishes, with its own key and with one from `bsfs key gen`, are
// resolved by `ipfs name resolve` on another Kubo node.
func TestNameKuboDHT(t *testing.T) {
	kubos := kubotest.StartDHTNetwork(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	repo := initDHTRepo(t, kubos[0].Addrs())
	d := startDaemon(t, repo)
	defer d.stopClean(t)
	waitConnected(t, repo, kubos[0].ID(), true)

	t.Run("bsfs resolves kubo", func(t *testing.T) {
		data := make([]byte, 1000)
		rand.Read(data)
		c, err := kubos[1].Add(ctx, data, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		out, err := kubos[1].Run(ctx, "name", "publish", "/ipfs/"+c.String())
		if err != nil {
			t.Fatal(err)
		}
		m := publishedLine.FindStringSubmatch(strings.TrimSpace(string(out)))
		if m == nil {
			t.Fatalf("ipfs name publish printed %q", out)
		}
		got := strings.TrimSpace(ok(t, repo, "", "name", "resolve", m[1]))
		if got != "/ipfs/"+c.String() {
			t.Fatalf("bsfs name resolve %s = %q, want /ipfs/%s", m[1], got, c)
		}
		// The peer ID form names the same record.
		got = strings.TrimSpace(ok(t, repo, "", "name", "resolve", "/ipns/"+kubos[1].ID().String()))
		if got != "/ipfs/"+c.String() {
			t.Fatalf("bsfs name resolve /ipns/%s = %q, want /ipfs/%s", kubos[1].ID(), got, c)
		}
	})

	c := strings.TrimSpace(ok(t, repo, "", "add", "-Q", writeFile(t, []byte("published by bsfs"))))
	ok(t, repo, "", "key", "gen", "site")
	for _, tc := range []struct{ key, value string }{
		{"", c},
		{"site", "/ipfs/" + c},
	} {
		t.Run("kubo resolves bsfs key="+tc.key, func(t *testing.T) {
			args := []string{"name", "publish", tc.value}
			if tc.key != "" {
				args = append(args, "--key", tc.key)
			}
			out := strings.TrimSpace(ok(t, repo, "", args...))
			m := publishedLine.FindStringSubmatch(out)
			if m == nil || m[2] != "/ipfs/"+c {
				t.Fatalf("bsfs name publish printed %q, want Published to <name>: /ipfs/%s", out, c)
			}
			var got string
			poll.UntilNil(t, 90*time.Second, func() error {
				out, err := kubos[2].Run(ctx, "name", "resolve", "--nocache", m[1])
				got = strings.TrimSpace(string(out))
				if err != nil {
					return err
				}
				if got != "/ipfs/"+c {
					return fmt.Errorf("ipfs name resolve %s = %q, want /ipfs/%s", m[1], got, c)
				}
				return nil
			})
		})
	}
}

// TestNameDelegatedAndDNSLink: with no DHT, a repository whose config
// names a delegated router and a DNS-over-HTTPS resolver on loopback
// resolves a DNSLink domain pointing at an IPNS name whose record only the
// router has, with no daemon and through one; the daemon publishes to the
// router, which then hands out bsfs's record.
func TestNameDelegatedAndDNSLink(t *testing.T) {
	rt := routingtest.NewRouter(t, false)
	doh := routingtest.NewDoH(t)
	repo := t.TempDir()
	setRouting(t, repo, map[string]any{"Type": "delegated", "DelegatedRouters": []string{rt.URL}})
	editConfig(t, repo, map[string]any{"DNS": map[string]any{"Resolvers": map[string]string{".": doh.URL()}}})

	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	name := ipns.NameFromPeer(id)
	c := absentCID(t, "named")
	rec, err := ipns.NewRecord(sk, path.FromCid(c), 1, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	rt.SetIPNS(name.String(), raw)
	doh.SetTXT("_dnslink.example.test", 60, "dnslink=/ipns/"+name.String()+"/docs")

	want := "/ipfs/" + c.String() + "/docs/a"
	if got := strings.TrimSpace(ok(t, repo, "", "name", "resolve", "/ipns/example.test/a")); got != want {
		t.Fatalf("offline name resolve = %q, want %q", got, want)
	}
	if line := fails(t, repo, "", "name", "resolve", "missing.test"); !strings.Contains(line, "missing.test") {
		t.Errorf("resolve of a missing domain: %q, want an error naming it", line)
	}
	d := startDaemon(t, repo, "--listen", "/ip4/127.0.0.1/tcp/0")
	defer d.stopClean(t)
	if got := strings.TrimSpace(ok(t, repo, "", "name", "resolve", "example.test/a")); got != want {
		t.Fatalf("name resolve through the daemon = %q, want %q", got, want)
	}
	out := strings.TrimSpace(ok(t, repo, "", "name", "publish", "--lifetime", "2h", c.String()))
	m := publishedLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("name publish printed %q", out)
	}
	got, err := ipns.UnmarshalRecord(rt.IPNS(m[1]))
	if err != nil {
		t.Fatalf("the router holds no record for %s: %v", m[1], err)
	}
	own, err := ipns.NameFromString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := ipns.ValidateWithName(got, own); err != nil {
		t.Fatalf("the record published for %s: %v", m[1], err)
	}
	if v, _ := got.Value(); v.String() != "/ipfs/"+c.String() {
		t.Fatalf("the record published points at %v, want /ipfs/%s", v, c)
	}
	if eol, _ := got.Validity(); eol.Before(time.Now().Add(time.Hour)) || eol.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("record valid until %v, want 2h from now (--lifetime)", eol)
	}
}
