package names_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/internal/routingtest"
)

// dohDNS returns the DNS of DNS.Resolvers {".": doh}.
func dohDNS(t *testing.T, resolvers map[string]string) *names.DNS {
	t.Helper()
	d, err := names.NewDNS(resolvers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDNSLink(t *testing.T) {
	doh := routingtest.NewDoH(t)
	c := testCID(t, "site")
	doh.SetTXT("_dnslink.example.test", 60, "dnslink=/ipfs/"+c.String())
	r := newResolver(t, dohDNS(t, map[string]string{".": doh.URL()}), nil)
	for _, in := range []string{"example.test", "/ipns/example.test/index.html", "Example.Test."} {
		res, err := r.Resolve(context.Background(), in)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", in, err)
		}
		var want []string
		if in == "/ipns/example.test/index.html" {
			want = []string{"index.html"}
		}
		if res.Root != c || !slices.Equal(res.Rest, want) || res.TTL <= 0 || res.TTL > time.Minute {
			t.Errorf("Resolve(%s) = %+v, want %s %q within a minute", in, res, c, want)
		}
	}
	if n := doh.Asked("_dnslink.example.test"); n != 1 {
		t.Errorf("resolver asked %d times, want 1: the answer is kept for its TTL", n)
	}
}

// TestDNSLinkChain follows a domain to a domain to an IPNS name to content,
// each link adding to the path, and keeps the chain's smallest TTL.
func TestDNSLinkChain(t *testing.T) {
	sk, name := newKey(t)
	c := testCID(t, "chained")
	rt := routingtest.NewRouter(t, false)
	rt.SetIPNS(name.String(), record(t, sk, "/ipfs/"+c.String()+"/c", 1, time.Now().Add(time.Hour), time.Hour))
	doh := routingtest.NewDoH(t)
	doh.SetTXT("_dnslink.a.test", 300, "dnslink=/ipns/b.test/a")
	doh.SetTXT("_dnslink.b.test", 30, "some other text", "dnslink=/ipns/"+name.Peer().String()+"/b")
	r := newResolver(t, dohDNS(t, map[string]string{".": doh.URL()}), nil, rt.URL)
	res, err := r.Resolve(context.Background(), "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c", "b", "a"}; res.Root != c || !slices.Equal(res.Rest, want) {
		t.Errorf("Resolve = %s %q, want %s %q", res.Root, res.Rest, c, want)
	}
	if res.TTL > 30*time.Second || res.TTL <= 0 {
		t.Errorf("TTL %v, want b.test's 30 s at most", res.TTL)
	}
}

func TestDNSLinkNotFound(t *testing.T) {
	doh := routingtest.NewDoH(t)
	doh.SetTXT("_dnslink.loop-a.test", 60, "dnslink=/ipns/loop-b.test")
	doh.SetTXT("_dnslink.loop-b.test", 60, "dnslink=/ipns/loop-a.test/x")
	doh.SetTXT("_dnslink.self.test", 60, "dnslink=/ipns/self.test")
	doh.SetTXT("_dnslink.notxt.test", 60)
	doh.SetTXT("_dnslink.other.test", 60, "v=spf1 -all", "dnslink=/http/example")
	// A chain of MaxDepth+1 names, the last pointing at content: from the
	// first it is too long, from the second it resolves.
	chain := func(i int) string { return "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".test" }
	for i := range names.MaxDepth {
		doh.SetTXT("_dnslink."+chain(i), 60, "dnslink=/ipns/"+chain(i+1))
	}
	doh.SetTXT("_dnslink."+chain(names.MaxDepth), 60, "dnslink=/ipfs/"+testCID(t, "deep").String())
	r := newResolver(t, dohDNS(t, map[string]string{".": doh.URL()}), nil)
	for _, in := range []string{"loop-a.test", "self.test", "notxt.test", "other.test", "missing.test", chain(0)} {
		if res, err := r.Resolve(context.Background(), in); !errors.Is(err, names.ErrNotFound) {
			t.Errorf("Resolve(%s) = %+v, %v; want ErrNotFound", in, res, err)
		}
	}
	if _, err := r.Resolve(context.Background(), chain(1)); err != nil {
		t.Errorf("Resolve(%s), a chain of MaxDepth: %v", chain(1), err)
	}
}

// TestDNSLinkTTL: an answer is kept for its TTL, then asked for again.
func TestDNSLinkTTL(t *testing.T) {
	doh := routingtest.NewDoH(t)
	c1, c2 := testCID(t, "one"), testCID(t, "two")
	doh.SetTXT("_dnslink.ttl.test", 1, "dnslink=/ipfs/"+c1.String())
	r := newResolver(t, dohDNS(t, map[string]string{".": doh.URL()}), nil)
	resolve := func() names.Resolved {
		t.Helper()
		res, err := r.Resolve(context.Background(), "ttl.test")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	start := time.Now()
	if res := resolve(); res.Root != c1 {
		t.Fatalf("first resolve: %s, want %s", res.Root, c1)
	}
	doh.SetTXT("_dnslink.ttl.test", 1, "dnslink=/ipfs/"+c2.String())
	res := resolve()
	if time.Since(start) < time.Second {
		if res.Root != c1 || doh.Asked("_dnslink.ttl.test") != 1 {
			t.Fatalf("within the TTL: %s after %d questions, want %s after 1", res.Root, doh.Asked("_dnslink.ttl.test"), c1)
		}
	}
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	if res := resolve(); res.Root != c2 || doh.Asked("_dnslink.ttl.test") != 2 {
		t.Fatalf("after the TTL: %s after %d questions, want %s after 2", res.Root, doh.Asked("_dnslink.ttl.test"), c2)
	}
}

// TestDNSResolversBySuffix: the longest suffix configured chooses the
// resolver, "." the rest.
func TestDNSResolversBySuffix(t *testing.T) {
	def, special := routingtest.NewDoH(t), routingtest.NewDoH(t)
	c1, c2 := testCID(t, "default"), testCID(t, "special")
	def.SetTXT("_dnslink.x.test", 60, "dnslink=/ipfs/"+c1.String())
	special.SetTXT("_dnslink.y.special.test", 60, "dnslink=/ipfs/"+c2.String())
	r := newResolver(t, dohDNS(t, map[string]string{".": def.URL(), "special.test.": special.URL()}), nil)
	for in, want := range map[string]any{"x.test": c1, "y.special.test": c2} {
		res, err := r.Resolve(context.Background(), in)
		if err != nil || res.Root != want {
			t.Errorf("Resolve(%s) = %v, %v; want %v", in, res.Root, err, want)
		}
	}
	if def.Asked("_dnslink.y.special.test") != 0 || special.Asked("_dnslink.x.test") != 0 {
		t.Error("a name was asked of the resolver of another suffix")
	}
	if _, err := names.NewDNS(map[string]string{".": "dns.example"}); err == nil {
		t.Error("NewDNS accepted a URL without a scheme")
	}
}

// TestResolveCancel: a resolve waiting on a resolver ends with its
// context, as a failure to ask rather than a missing name.
func TestResolveCancel(t *testing.T) {
	doh := routingtest.NewDoH(t)
	release := make(chan struct{})
	defer close(release)
	doh.Hold(release)
	r := newResolver(t, dohDNS(t, map[string]string{".": doh.URL()}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(ctx, "slow.test")
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, names.ErrNotFound) {
			t.Errorf("Resolve = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resolve did not end with its context")
	}
}
