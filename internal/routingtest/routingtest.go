// Package routingtest serves content routing to tests: a delegated router
// on loopback speaking the Routing V1 HTTP API, routers that fail, and the
// records and addresses they hand out.
package routingtest

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Router is a delegated router on 127.0.0.1 speaking the Routing V1 API:
// GET /routing/v1/providers/{cid} is answered with the records added under
// the CID's multihash, as NDJSON when the request accepts it (boxo's
// client asks for application/x-ndjson first) and as JSON otherwise. It
// applies no filter of its own, as a router predating IPIP-484 does.
type Router struct {
	*httptest.Server
	jsonOnly bool // answer JSON even to a request that accepts NDJSON

	mu       sync.Mutex
	records  map[string][]map[string]any
	requests []string          // "<path>?<query> Accept: <accept>" of each request
	asked    map[string]int    // requests by multihash
	ipns     map[string][]byte // IPNS records by name, as given
	ipnsGets map[string]int    // IPNS GET requests by name
}

// NewRouter starts a router, closed when the test ends. With jsonOnly it
// answers JSON even to a request that accepts NDJSON.
func NewRouter(t testing.TB, jsonOnly bool) *Router {
	t.Helper()
	s := &Router{jsonOnly: jsonOnly, records: make(map[string][]map[string]any), asked: make(map[string]int),
		ipns: make(map[string][]byte), ipnsGets: make(map[string]int)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /routing/v1/providers/{cid}", s.providers)
	mux.HandleFunc("GET /routing/v1/ipns/{name}", s.getIPNS)
	mux.HandleFunc("PUT /routing/v1/ipns/{name}", s.putIPNS)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Add makes the router name rec among c's providers.
func (s *Router) Add(c cid.Cid, rec map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[string(c.Hash())] = append(s.records[string(c.Hash())], rec)
}

// Requests returns "<path>?<query> Accept: <accept>" of each request so
// far.
func (s *Router) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Asked returns how many requests named c's multihash.
func (s *Router) Asked(c cid.Cid) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[string(c.Hash())]
}

func (s *Router) providers(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	accept := r.Header.Get("Accept")
	s.mu.Lock()
	recs := slices.Clone(s.records[string(c.Hash())])
	s.requests = append(s.requests, r.URL.RequestURI()+" Accept: "+accept)
	s.asked[string(c.Hash())]++
	s.mu.Unlock()
	if !s.jsonOnly && strings.Contains(accept, "application/x-ndjson") {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w) // one record a line
		for _, rec := range recs {
			if err := enc.Encode(rec); err != nil {
				return
			}
		}
		return
	}
	if recs == nil {
		recs = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"Providers": recs})
}

// PeerRecord is the Routing V1 record of a provider reachable at ai over
// protocols (left out of the record when none are given).
func PeerRecord(ai peer.AddrInfo, protocols ...string) map[string]any {
	addrs := make([]string, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	rec := map[string]any{"Schema": "peer", "ID": ai.ID.String(), "Addrs": addrs}
	if len(protocols) > 0 {
		rec["Protocols"] = protocols
	}
	return rec
}

// Handler answers a request to a faulty router. A handler that blocks
// should also return once release is closed.
type Handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})

// Faulty starts a router on 127.0.0.1 whose every answer is handler's and
// returns its URL. release is closed when the test ends, before the server
// is closed.
func Faulty(t testing.TB, handler Handler) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(w, r, release)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv.URL
}

// Failing500 answers every request with an internal server error.
func Failing500(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// Warned reports whether a WARN line of log names router and c. The line
// is slog's: from a text handler (level=WARN) or from the default logger
// (WARN after the time).
func Warned(log, router string, c cid.Cid) bool {
	for line := range strings.Lines(log) {
		warn := strings.Contains(line, "level=WARN") || strings.Contains(line, " WARN ")
		if warn && strings.Contains(line, "router="+router+" ") && strings.Contains(line, "cid="+c.String()) {
			return true
		}
	}
	return false
}

// HTTPAddr is the address of the HTTP server at url (http://ip:port), such
// as a gateway on loopback, as a provider record gives it.
func HTTPAddr(t testing.TB, url string) multiaddr.Multiaddr {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := multiaddr.NewMultiaddr("/ip4/" + host + "/tcp/" + port + "/http")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// PeerID returns a fresh peer ID: a provider that exists only as a record.
func PeerID(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ipnsRecordType is the media type of an IPNS record.
const ipnsRecordType = "application/vnd.ipfs.ipns-record"

// SetIPNS makes the router answer GET /routing/v1/ipns/{name} with rec,
// whatever it holds: the router checks no record.
func (s *Router) SetIPNS(name string, rec []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ipns[name] = slices.Clone(rec)
}

// IPNS returns the record the router holds for name (the last one PUT or
// set), nil if none.
func (s *Router) IPNS(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ipns[name])
}

// IPNSAsked returns how many GET requests named name.
func (s *Router) IPNSAsked(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ipnsGets[name]
}

func (s *Router) getIPNS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	rec := s.ipns[name]
	s.ipnsGets[name]++
	s.requests = append(s.requests, r.URL.RequestURI()+" Accept: "+r.Header.Get("Accept"))
	s.mu.Unlock()
	if rec == nil {
		http.Error(w, "no record", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", ipnsRecordType)
	_, _ = w.Write(rec)
}

func (s *Router) putIPNS(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<10+1))
	if err != nil || len(body) > 10<<10 || r.Header.Get("Content-Type") != ipnsRecordType {
		http.Error(w, "want one IPNS record of at most 10 KiB", http.StatusBadRequest)
		return
	}
	s.SetIPNS(r.PathValue("name"), body)
}
