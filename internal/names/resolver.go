package names

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
)

// DefaultTimeout bounds the lookups of one Resolve when Config.Timeout is
// zero: Kubo's default for `ipfs name resolve`.
const DefaultTimeout = time.Minute

// Config configures a Resolver. The zero value resolves nothing: every
// name is not found.
type Config struct {
	// Sources find IPNS records (the DHT, the delegated routers), by a
	// name for the log. All are asked at once.
	Sources map[string]Source
	// DNS looks up the TXT records of DNSLink; nil resolves no domain.
	DNS TXTLookup
	// MaxCacheTTL caps how long an answer is kept (Ipns.MaxCacheTTL);
	// 0 means no cap beyond the records' own TTLs.
	MaxCacheTTL time.Duration
	// Timeout bounds the lookups of one Resolve: 0 means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the resolver's log; nil discards it.
	Logger *slog.Logger
}

// Resolver resolves IPNS names and DNSLink domains to the content they
// point at, following chains of names, and keeps each answer for its TTL.
// Its methods are safe for concurrent use.
type Resolver struct {
	// Read-only after New, no lock.
	sources map[string]Source
	order   []string // source names, sorted: the log's order
	dns     TXTLookup
	maxTTL  time.Duration
	timeout time.Duration
	log     *slog.Logger
	cache   *cache
}

// New returns a resolver over cfg's sources.
func New(cfg Config) *Resolver {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Resolver{
		sources: maps.Clone(cfg.Sources),
		order:   slices.Sorted(maps.Keys(cfg.Sources)),
		dns:     cfg.DNS,
		maxTTL:  cfg.MaxCacheTTL,
		timeout: timeout,
		log:     log,
		cache:   newCache(cacheSize),
	}
}

// Resolve returns what name points at: name is an IPNS name (a peer ID, or
// a CIDv1 with the libp2p-key codec) or a DNSLink domain, bare or as
// /ipns/<name>, optionally followed by a path, which is appended to the
// answer's Rest. A name that does not resolve is an error wrapping
// ErrNotFound; a chain that loops or runs longer than MaxDepth too.
func (r *Resolver) Resolve(ctx context.Context, name string) (Resolved, error) {
	first, rest, err := normalize(name)
	if err != nil {
		r.log.Info("name not resolved", "name", name, "err", err)
		return Resolved{}, err
	}
	res, err := r.resolveChain(ctx, canonical(first))
	if err != nil {
		r.log.Info("name not resolved", "name", name, "err", err)
		return Resolved{}, err
	}
	res.Rest = append(slices.Clone(res.Rest), rest...)
	return res, nil
}

// resolveChain follows name through IPNS records and DNSLinks until one
// points at /ipfs/, using and filling the cache.
func (r *Resolver) resolveChain(ctx context.Context, name string) (Resolved, error) {
	if res, ok := r.cache.get(name, time.Now()); ok {
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var (
		chain []string // the names followed, in order
		rest  []string // the path gathered so far, below the current name
		ttl   = r.maxTTL
	)
	if ttl <= 0 {
		ttl = math.MaxInt64
	}
	cur := name
	for range MaxDepth {
		cur = canonical(cur)
		if slices.Contains(chain, cur) {
			return Resolved{}, fmt.Errorf("%w: %s: the chain of names loops (%v)", ErrNotFound, name, append(chain, cur))
		}
		chain = append(chain, cur)
		if res, ok := r.cache.get(cur, time.Now()); ok && cur != name {
			return r.finish(chain, Resolved{Root: res.Root, Rest: append(slices.Clone(res.Rest), rest...), TTL: min(ttl, res.TTL)}), nil
		}
		p, linkTTL, err := r.step(ctx, cur)
		if err != nil {
			if cur != name {
				err = fmt.Errorf("%s, reached from %s: %w", cur, name, err)
			}
			return Resolved{}, err
		}
		ttl = min(ttl, max(linkTTL, 0))
		segs := p.Segments() // namespace, root, then the path
		if slices.Contains(segs, "..") || slices.Contains(segs, ".") {
			return Resolved{}, fmt.Errorf("%w: %s points at %s, a path with . or .. in it", ErrNotFound, cur, p)
		}
		rest = append(slices.Clone(segs[2:]), rest...)
		if segs[0] == "ipfs" {
			c, err := cid.Decode(segs[1])
			if err != nil {
				return Resolved{}, fmt.Errorf("%w: %s points at %s: %v", ErrNotFound, cur, p, err)
			}
			return r.finish(chain, Resolved{Root: c, Rest: rest, TTL: ttl}), nil
		}
		cur = segs[1] // ipns: the next name
	}
	return Resolved{}, fmt.Errorf("%w: %s: more than %d names in the chain", ErrNotFound, name, MaxDepth)
}

// finish caches res under the chain's first name and returns it.
func (r *Resolver) finish(chain []string, res Resolved) Resolved {
	if res.TTL > 0 {
		r.cache.put(chain[0], res, time.Now())
	}
	return res
}

// step resolves one name to the path it points at, and for how long the
// answer holds.
func (r *Resolver) step(ctx context.Context, name string) (path.Path, time.Duration, error) {
	if n, err := ipns.NameFromString(name); err == nil {
		return r.resolveIPNS(ctx, n)
	}
	if isDomain(name) {
		return r.resolveDNSLink(ctx, name)
	}
	return nil, 0, fmt.Errorf("%w: %q is neither an IPNS name (a peer ID or libp2p-key CID) nor a domain name", ErrNotFound, name)
}

// canonical is the form of name the cache keeps it under: an IPNS name as
// its CIDv1, a domain in lower case without the final dot.
func canonical(name string) string {
	if n, err := ipns.NameFromString(name); err == nil {
		return n.String()
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
