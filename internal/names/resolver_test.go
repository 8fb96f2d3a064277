package names_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	ipns_pb "github.com/ipfs/boxo/ipns/pb"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/internal/routingtest"
	"github.com/bsfs/bsfs/internal/testlog"
)

// newKey returns a fresh key and its IPNS name.
func newKey(t *testing.T) (crypto.PrivKey, ipns.Name) {
	t.Helper()
	sk, pk, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk, nameOf(t, pk)
}

func nameOf(t *testing.T, pk crypto.PubKey) ipns.Name {
	t.Helper()
	n, err := ipns.NameFromString(mustPeer(t, pk))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustPeer(t *testing.T, pk crypto.PubKey) string {
	t.Helper()
	raw, err := crypto.MarshalPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	// An Ed25519 key is short enough to be inlined: the identity hash.
	mh, err := multihash.Sum(raw, multihash.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Libp2pKey, mh).String()
}

// testCID returns the CID of data, raw.
func testCID(t *testing.T, data string) cid.Cid {
	t.Helper()
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: multihash.SHA2_256}.Sum([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// record returns sk's signed record pointing at value.
func record(t *testing.T, sk crypto.PrivKey, value string, seq uint64, eol time.Time, ttl time.Duration) []byte {
	t.Helper()
	p, err := path.NewPath(value)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ipns.NewRecord(sk, p, seq, eol, ttl)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// delegated returns the Routing V1 client of the routers at urls.
func delegated(t *testing.T, urls ...string) names.Source {
	t.Helper()
	d, err := routing.NewDelegated(routing.DelegatedConfig{Routers: urls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newResolver returns a resolver over the routers at urls and dns, its log
// written to log.
func newResolver(t *testing.T, dns names.TXTLookup, log *testlog.Buffer, urls ...string) *names.Resolver {
	t.Helper()
	cfg := names.Config{DNS: dns, Timeout: 10 * time.Second}
	if len(urls) > 0 {
		cfg.Sources = map[string]names.Source{"delegated": delegated(t, urls...)}
	}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	return names.New(cfg)
}

func TestResolveDelegated(t *testing.T) {
	sk, name := newKey(t)
	c := testCID(t, "hello")
	rt := routingtest.NewRouter(t, false)
	rt.SetIPNS(name.String(), record(t, sk, "/ipfs/"+c.String()+"/docs", 1, time.Now().Add(time.Hour), time.Minute))
	r := newResolver(t, nil, nil, rt.URL)
	ctx := context.Background()
	for _, in := range []string{name.String(), name.Peer().String(), "/ipns/" + name.String() + "/a/b"} {
		res, err := r.Resolve(ctx, in)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", in, err)
		}
		want := []string{"docs"}
		if strings.HasSuffix(in, "/a/b") {
			want = []string{"docs", "a", "b"}
		}
		if res.Root != c || !slices.Equal(res.Rest, want) {
			t.Errorf("Resolve(%s) = %s %q, want %s %q", in, res.Root, res.Rest, c, want)
		}
		if res.TTL <= 0 || res.TTL > time.Minute {
			t.Errorf("Resolve(%s): TTL %v, want the record's minute or less", in, res.TTL)
		}
	}
	// The first answer was kept: the router was asked once.
	if n := rt.IPNSAsked(name.String()); n != 1 {
		t.Errorf("router asked %d times for %s, want 1", n, name)
	}
}

// badSignature returns data, a record, with its signature changed.
func badSignature(t *testing.T, data []byte) []byte {
	t.Helper()
	var pb ipns_pb.IpnsRecord
	if err := proto.Unmarshal(data, &pb); err != nil {
		t.Fatal(err)
	}
	pb.SignatureV2[0] ^= 0xff
	out, err := proto.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRefusedRecords(t *testing.T) {
	sk, name := newKey(t)
	good, bad := testCID(t, "good"), testCID(t, "bad")
	later := time.Now().Add(time.Hour)
	cases := []struct {
		what    string
		records [][]byte // one router each
		want    cid.Cid  // Undef: not found
	}{
		{"bad signature", [][]byte{badSignature(t, record(t, sk, "/ipfs/"+bad.String(), 5, later, time.Minute))}, cid.Undef},
		{"expired", [][]byte{record(t, sk, "/ipfs/"+bad.String(), 5, time.Now().Add(-time.Minute), time.Minute)}, cid.Undef},
		{"lower sequence first", [][]byte{
			record(t, sk, "/ipfs/"+bad.String(), 3, later, time.Minute),
			record(t, sk, "/ipfs/"+good.String(), 4, later, time.Minute),
		}, good},
		{"lower sequence last", [][]byte{
			record(t, sk, "/ipfs/"+good.String(), 7, later, time.Minute),
			record(t, sk, "/ipfs/"+bad.String(), 6, later, time.Minute),
		}, good},
		{"bad signature with a higher sequence", [][]byte{
			record(t, sk, "/ipfs/"+good.String(), 1, later, time.Minute),
			badSignature(t, record(t, sk, "/ipfs/"+bad.String(), 9, later, time.Minute)),
		}, good},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			var urls []string
			for _, rec := range tc.records {
				rt := routingtest.NewRouter(t, false)
				rt.SetIPNS(name.String(), rec)
				urls = append(urls, rt.URL)
			}
			var log testlog.Buffer
			res, err := newResolver(t, nil, &log, urls...).Resolve(context.Background(), name.String())
			if !tc.want.Defined() {
				if !errors.Is(err, names.ErrNotFound) {
					t.Fatalf("Resolve = %v, %v; want ErrNotFound", res.Root, err)
				}
				if !strings.Contains(log.String(), "name not resolved") || !strings.Contains(log.String(), name.String()) {
					t.Errorf("no log line names %s:\n%s", name, log.String())
				}
				return
			}
			if err != nil || res.Root != tc.want {
				t.Fatalf("Resolve = %v, %v; want %s", res.Root, err, tc.want)
			}
		})
	}
}

func TestResolveNoSource(t *testing.T) {
	_, name := newKey(t)
	rt := routingtest.NewRouter(t, false)
	r := newResolver(t, nil, nil, rt.URL)
	for _, in := range []string{name.String(), "example.test", "not a name", "", "/ipns/"} {
		if _, err := r.Resolve(context.Background(), in); !errors.Is(err, names.ErrNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrNotFound", in, err)
		}
	}
	// A router that fails is a failure to ask, not a missing name.
	broken := routingtest.Faulty(t, routingtest.Failing500)
	_, err := newResolver(t, nil, nil, broken).Resolve(context.Background(), name.String())
	if err == nil || errors.Is(err, names.ErrNotFound) {
		t.Errorf("Resolve through a failing router = %v, want an error other than ErrNotFound", err)
	}
}
