package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/routing"
)

// GetIPNS looks up name's IPNS record in the DHT, which keeps the best
// valid one it finds (the DHT's "ipns" validator checks each). No record
// is an error wrapping routing.ErrNotFound.
func (r *Router) GetIPNS(ctx context.Context, name ipns.Name) ([]*ipns.Record, error) {
	data, err := r.dht.GetValue(ctx, string(name.RoutingKey()))
	if err != nil {
		if errors.Is(err, routing.ErrNotFound) {
			return nil, fmt.Errorf("DHT: %s: %w", name, routing.ErrNotFound)
		}
		return nil, fmt.Errorf("DHT: %s: %w", name, err)
	}
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return nil, fmt.Errorf("DHT: %s: %w", name, err)
	}
	return []*ipns.Record{rec}, nil
}

// PutIPNS stores rec, name's record, on the DHT peers closest to name.
func (r *Router) PutIPNS(ctx context.Context, name ipns.Name, rec *ipns.Record) error {
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		return err
	}
	if err := r.dht.PutValue(ctx, string(name.RoutingKey()), data); err != nil {
		return fmt.Errorf("DHT: put %s: %w", name, err)
	}
	return nil
}

// checkIPNSValidator fails unless both DHTs validate records under
// /ipns/ (kad-dht adds boxo's IPNS validator by default).
func checkIPNSValidator(vs ...record.Validator) error {
	for _, v := range vs {
		ns, ok := v.(record.NamespacedValidator)
		if !ok || ns["ipns"] == nil {
			return errors.New("routing: the DHT has no validator for IPNS records")
		}
	}
	return nil
}

// GetIPNS asks every router for name's record at once (GET
// /routing/v1/ipns/{name}) and returns the records they gave. A router
// whose record fails validation is logged and counts as having none. When
// no router gave a record, the error wraps routing.ErrNotFound unless
// every router failed to answer.
func (d *Delegated) GetIPNS(ctx context.Context, name ipns.Name) ([]*ipns.Record, error) {
	var (
		mu     sync.Mutex
		recs   []*ipns.Record
		failed []error
		wg     sync.WaitGroup
	)
	for _, r := range d.routers {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, d.timeout)
			defer cancel()
			start := time.Now()
			rec, err := r.client.GetIPNS(rctx, name)
			took := time.Since(start).Round(time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				d.log.Debug("delegated router answered", "router", r.url, "ipns", name, "took", took)
				recs = append(recs, rec)
			case errors.Is(err, routing.ErrNotFound):
			case isInvalidRecord(err):
				d.log.Warn("delegated router gave an invalid IPNS record", "router", r.url, "ipns", name, "err", err)
			default:
				if ctx.Err() == nil {
					d.log.Warn("delegated router failed", "router", r.url, "ipns", name, "err", err, "took", took)
				}
				failed = append(failed, fmt.Errorf("%s: %w", r.url, err))
			}
		})
	}
	wg.Wait()
	switch {
	case len(recs) > 0:
		return recs, nil
	case len(d.routers) > 0 && len(failed) == len(d.routers):
		return nil, errors.Join(failed...)
	}
	return nil, fmt.Errorf("delegated routers: %s: %w", name, routing.ErrNotFound)
}

// isInvalidRecord reports whether err is boxo's verdict on a record that
// fails validation.
func isInvalidRecord(err error) bool {
	for _, e := range []error{
		ipns.ErrSignature, ipns.ErrExpiredRecord, ipns.ErrInvalidRecord, ipns.ErrRecordSize,
		ipns.ErrDataMissing, ipns.ErrPublicKeyMismatch, ipns.ErrInvalidPublicKey,
		ipns.ErrPublicKeyNotFound, ipns.ErrInvalidValidity, ipns.ErrUnrecognizedValidity,
		ipns.ErrInvalidPath,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// PutIPNS sends rec, name's record, to every router at once (PUT
// /routing/v1/ipns/{name}); the error joins those of the routers that
// failed.
func (d *Delegated) PutIPNS(ctx context.Context, name ipns.Name, rec *ipns.Record) error {
	errs := make([]error, len(d.routers))
	var wg sync.WaitGroup
	for i, r := range d.routers {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, d.timeout)
			defer cancel()
			if err := r.client.PutIPNS(rctx, name, rec); err != nil {
				errs[i] = fmt.Errorf("delegated router %s: put %s: %w", r.url, name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
