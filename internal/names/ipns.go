package names

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/routing"
)

// Source finds IPNS records: the DHT, or delegated routers.
type Source interface {
	// GetIPNS returns the records of name the source has. An error
	// wrapping routing.ErrNotFound (go-libp2p's) means it has none; the
	// records returned are validated again by the Resolver.
	GetIPNS(ctx context.Context, name ipns.Name) ([]*ipns.Record, error)
}

// answer is what one source answered.
type answer struct {
	source string
	recs   []*ipns.Record
	err    error
}

// resolveIPNS asks every source for name's records at once, keeps the
// valid ones (signed by name's key, not expired) and returns the value of
// the best, the one with the highest sequence (then the latest validity),
// with its TTL capped by its remaining validity.
func (r *Resolver) resolveIPNS(ctx context.Context, name ipns.Name) (path.Path, time.Duration, error) {
	if len(r.sources) == 0 {
		return nil, 0, fmt.Errorf("%w: %s: no IPNS routing (no DHT, no delegated router)", ErrNotFound, name)
	}
	answers := make([]answer, len(r.order))
	var wg sync.WaitGroup
	for i, src := range r.order {
		wg.Go(func() {
			recs, err := r.sources[src].GetIPNS(ctx, name)
			answers[i] = answer{source: src, recs: recs, err: err}
		})
	}
	wg.Wait()
	var (
		valid   []*ipns.Record
		raw     [][]byte
		failed  []error
		refused int
	)
	for _, a := range answers {
		if a.err != nil && !errors.Is(a.err, routing.ErrNotFound) {
			failed = append(failed, fmt.Errorf("%s: %w", a.source, a.err))
		}
		for _, rec := range a.recs {
			data, err := checkRecord(rec, name)
			if err != nil {
				refused++
				r.log.Warn("IPNS record refused", "name", name, "source", a.source, "err", err)
				continue
			}
			valid = append(valid, rec)
			raw = append(raw, data)
		}
	}
	if len(valid) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		if len(failed) == len(answers) {
			return nil, 0, fmt.Errorf("%s: %w", name, errors.Join(failed...))
		}
		return nil, 0, fmt.Errorf("%w: %s: no valid IPNS record (%d refused, %d lookups failed)", ErrNotFound, name, refused, len(failed))
	}
	best, err := ipns.Validator{}.Select(string(name.RoutingKey()), raw)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrNotFound, name, err)
	}
	return recordValue(valid[best], name)
}

// checkRecord validates rec against name and returns its bytes.
func checkRecord(rec *ipns.Record, name ipns.Name) ([]byte, error) {
	if rec == nil {
		return nil, errors.New("no record")
	}
	if err := ipns.ValidateWithName(rec, name); err != nil {
		return nil, err
	}
	return ipns.MarshalRecord(rec)
}

// recordValue returns a valid record's path and TTL, the TTL no longer
// than the record stays valid.
func recordValue(rec *ipns.Record, name ipns.Name) (path.Path, time.Duration, error) {
	p, err := rec.Value()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrNotFound, name, err)
	}
	if p.Namespace() != path.IPFSNamespace && p.Namespace() != path.IPNSNamespace {
		return nil, 0, fmt.Errorf("%w: %s points at %s, outside /ipfs/ and /ipns/", ErrNotFound, name, p)
	}
	ttl, err := rec.TTL()
	if err != nil {
		ttl = ipns.DefaultRecordTTL
	}
	if eol, err := rec.Validity(); err == nil {
		ttl = min(ttl, time.Until(eol))
	}
	return p, max(ttl, 0), nil
}
