package names

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/bsfs/bsfs/internal/httpurl"
)

const (
	// SystemTTL is how long an answer of the system resolver, which does
	// not tell its TTL, is kept.
	SystemTTL = time.Minute
	// DefaultDNSTimeout bounds one DNS-over-HTTPS request.
	DefaultDNSTimeout = 30 * time.Second
	// maxDNSMessage bounds a DNS-over-HTTPS answer.
	maxDNSMessage = 64 << 10
	// dnsMessageType is RFC 8484's media type.
	dnsMessageType = "application/dns-message"
)

// DNS chooses a resolver by the domain suffix of the name looked up, as
// Kubo's DNS.Resolvers: the longest suffix configured wins, "." is the
// default, and without "." the system resolver is. Close drops its idle
// connections.
type DNS struct {
	bySuffix  map[string]TXTLookup // suffix without dots at either end
	def       TXTLookup
	transport *http.Transport
}

// NewDNS returns the resolver of resolvers, a map from domain suffix
// ("eth." or "eth"; "." for every other name) to the URL of a
// DNS-over-HTTPS resolver (RFC 8484). It fails on a URL that is not an
// absolute http or https URL.
func NewDNS(resolvers map[string]string) (*DNS, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr, Timeout: DefaultDNSTimeout}
	d := &DNS{bySuffix: make(map[string]TXTLookup), def: systemDNS{}, transport: tr}
	for suffix, u := range resolvers {
		if err := CheckDoHURL(u); err != nil {
			return nil, fmt.Errorf("DNS resolver %q for %q: %w", u, suffix, err)
		}
		doh := &doh{url: u, client: hc}
		if s := strings.Trim(suffix, "."); s != "" {
			d.bySuffix[strings.ToLower(s)] = doh
		} else {
			d.def = doh
		}
	}
	return d, nil
}

// CheckDoHURL reports why u cannot name a DNS-over-HTTPS resolver, or nil
// when it can: a URL httpurl.Parse takes.
func CheckDoHURL(u string) error {
	_, err := httpurl.Parse(u)
	return err
}

// LookupTXT asks the resolver configured for name's longest suffix.
func (d *DNS) LookupTXT(ctx context.Context, name string) ([]string, time.Duration, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	best, use := -1, d.def
	for suffix, r := range d.bySuffix {
		if (name == suffix || strings.HasSuffix(name, "."+suffix)) && len(suffix) > best {
			best, use = len(suffix), r
		}
	}
	return use.LookupTXT(ctx, name)
}

// Close drops the idle connections to the DNS-over-HTTPS resolvers.
func (d *DNS) Close() error {
	d.transport.CloseIdleConnections()
	return nil
}

// systemDNS is the system's resolver.
type systemDNS struct{}

func (systemDNS) LookupTXT(ctx context.Context, name string) ([]string, time.Duration, error) {
	txts, err := net.DefaultResolver.LookupTXT(ctx, name)
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return nil, 0, fmt.Errorf("%s: %w", name, ErrNoDomain)
	}
	return txts, SystemTTL, err
}

// doh is a DNS-over-HTTPS resolver (RFC 8484), asked with GET.
type doh struct {
	url    string
	client *http.Client
}

func (d *doh) LookupTXT(ctx context.Context, name string) ([]string, time.Duration, error) {
	q, err := txtQuery(name)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	u := d.url + "?dns=" + base64.RawURLEncoding.EncodeToString(q)
	if strings.Contains(d.url, "?") {
		u = d.url + "&dns=" + base64.RawURLEncoding.EncodeToString(q)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", dnsMessageType)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("DNS-over-HTTPS %s: %w", d.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("DNS-over-HTTPS %s: %s", d.url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, dnsMessageType) {
		return nil, 0, fmt.Errorf("DNS-over-HTTPS %s: Content-Type %q, want %s", d.url, ct, dnsMessageType)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDNSMessage+1))
	if err != nil {
		return nil, 0, fmt.Errorf("DNS-over-HTTPS %s: %w", d.url, err)
	}
	if len(body) > maxDNSMessage {
		return nil, 0, fmt.Errorf("DNS-over-HTTPS %s: answer over %d bytes", d.url, maxDNSMessage)
	}
	txts, ttl, err := txtAnswer(body, name)
	if err != nil {
		return nil, 0, fmt.Errorf("DNS-over-HTTPS %s: %w", d.url, err)
	}
	return txts, ttl, nil
}

// txtQuery is the DNS query for name's TXT records, with ID 0 as RFC 8484
// asks, recursion desired.
func txtQuery(name string) ([]byte, error) {
	n, err := dnsmessage.NewName(name + ".")
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: n, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// txtAnswer reads the answer to txtQuery(name): the TXT strings in it,
// each record's joined, and their smallest TTL.
func txtAnswer(msg []byte, name string) ([]string, time.Duration, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, 0, err
	}
	if !h.Response || h.ID != 0 {
		return nil, 0, errors.New("not an answer to the query")
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, 0, err
	}
	if len(qs) != 1 || !strings.EqualFold(qs[0].Name.String(), name+".") || qs[0].Type != dnsmessage.TypeTXT {
		return nil, 0, errors.New("the answer is to another question")
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, 0, fmt.Errorf("%s: %w", name, ErrNoDomain)
	default:
		return nil, 0, fmt.Errorf("%s: %v", name, h.RCode)
	}
	var (
		txts []string
		ttl  uint32 = math.MaxUint32
	)
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		if rh.Type != dnsmessage.TypeTXT {
			if err := p.SkipAnswer(); err != nil {
				return nil, 0, err
			}
			continue
		}
		rr, err := p.TXTResource()
		if err != nil {
			return nil, 0, err
		}
		var joined bytes.Buffer
		for _, s := range rr.TXT {
			joined.WriteString(s)
		}
		txts = append(txts, joined.String())
		ttl = min(ttl, rh.TTL)
	}
	if len(txts) == 0 {
		ttl = 0
	}
	return txts, time.Duration(ttl) * time.Second, nil
}
