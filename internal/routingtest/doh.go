package routingtest

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DoH is a DNS-over-HTTPS resolver on 127.0.0.1 (RFC 8484: GET with ?dns=
// and POST, application/dns-message) answering TXT questions from the
// records set on it, NXDOMAIN for other names. Its URL is what
// DNS.Resolvers names.
type DoH struct {
	*httptest.Server

	mu    sync.Mutex
	txt   map[string]dohRecord // by lower-case name without the final dot
	asked map[string]int
	hold  chan struct{} // when set, requests wait for it to close
}

type dohRecord struct {
	ttl  uint32
	txts []string
}

// NewDoH starts a resolver, closed when the test ends.
func NewDoH(t testing.TB) *DoH {
	t.Helper()
	d := &DoH{txt: make(map[string]dohRecord), asked: make(map[string]int)}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

// URL is the resolver's URL, with the conventional /dns-query path.
func (d *DoH) URL() string { return d.Server.URL + "/dns-query" }

// SetTXT makes name's TXT records txts, with a TTL of ttl seconds.
func (d *DoH) SetTXT(name string, ttl uint32, txts ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[strings.ToLower(strings.TrimSuffix(name, "."))] = dohRecord{ttl: ttl, txts: txts}
}

// Asked returns how many questions named name.
func (d *DoH) Asked(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[strings.ToLower(strings.TrimSuffix(name, "."))]
}

// Hold makes every request wait until release is closed or the client
// goes away.
func (d *DoH) Hold(release chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hold = release
}

func (d *DoH) serve(w http.ResponseWriter, r *http.Request) {
	var q []byte
	var err error
	switch r.Method {
	case http.MethodGet:
		q, err = base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/dns-message" {
			http.Error(w, "want application/dns-message", http.StatusUnsupportedMediaType)
			return
		}
		q, err = io.ReadAll(io.LimitReader(r.Body, 65535))
	default:
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	hold := d.hold
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	answer, err := d.answer(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/dns-message")
	_, _ = w.Write(answer)
}

// answer builds the response to the query q.
func (d *DoH) answer(q []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, err
	}
	question, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSuffix(question.Name.String(), "."))
	d.mu.Lock()
	rec, ok := d.txt[name]
	d.asked[name]++
	d.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(question); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if ok && question.Type == dnsmessage.TypeTXT {
		for _, txt := range rec.txts {
			hdr := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: rec.ttl}
			if err := b.TXTResource(hdr, dnsmessage.TXTResource{TXT: []string{txt}}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}
