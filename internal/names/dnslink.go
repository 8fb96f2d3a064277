package names

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/boxo/path"
)

// ErrNoDomain is wrapped by a TXTLookup's error for a name that does not
// exist (NXDOMAIN).
var ErrNoDomain = errors.New("no such domain")

// TXTLookup looks up the TXT records of a DNS name.
type TXTLookup interface {
	// LookupTXT returns the TXT strings of name, each record's strings
	// joined, and for how long they may be kept. A name that does not
	// exist is an error wrapping ErrNoDomain; one with no TXT record
	// answers none.
	LookupTXT(ctx context.Context, name string) ([]string, time.Duration, error)
}

// dnslinkPrefix starts a DNSLink TXT record.
const dnslinkPrefix = "dnslink="

// resolveDNSLink reads the DNSLink of domain, the TXT record
// "dnslink=/ipfs/<cid>" or "dnslink=/ipns/<name>" of _dnslink.<domain>.
// Of several, the first in byte order wins, as the DNSLink spec says.
func (r *Resolver) resolveDNSLink(ctx context.Context, domain string) (path.Path, time.Duration, error) {
	if r.dns == nil {
		return nil, 0, fmt.Errorf("%w: %s: no DNS resolver", ErrNotFound, domain)
	}
	qname := "_dnslink." + strings.TrimSuffix(domain, ".")
	txts, ttl, err := r.dns.LookupTXT(ctx, qname)
	switch {
	case errors.Is(err, ErrNoDomain):
		return nil, 0, fmt.Errorf("%w: %s: no TXT record at %s", ErrNotFound, domain, qname)
	case err != nil:
		return nil, 0, fmt.Errorf("DNSLink of %s: %w", domain, err)
	}
	var links []path.Path
	for _, txt := range txts {
		v, ok := strings.CutPrefix(strings.TrimSpace(txt), dnslinkPrefix)
		if !ok {
			continue
		}
		p, err := path.NewPath(strings.TrimSpace(v))
		if err != nil || (p.Namespace() != path.IPFSNamespace && p.Namespace() != path.IPNSNamespace) {
			r.log.Warn("DNSLink record refused", "domain", domain, "txt", txt)
			continue
		}
		links = append(links, p)
	}
	if len(links) == 0 {
		return nil, 0, fmt.Errorf("%w: %s: no dnslink=/ipfs/ or /ipns/ TXT record at %s", ErrNotFound, domain, qname)
	}
	slices.SortFunc(links, func(a, b path.Path) int { return strings.Compare(a.String(), b.String()) })
	return links[0], ttl, nil
}
