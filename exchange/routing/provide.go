package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
)

const (
	// provideTimeout bounds the announcement of one CID: a lookup of the
	// closest peers and a record sent to each.
	provideTimeout = 2 * time.Minute
	// provideWorkers is how many CIDs a reprovide announces at once.
	provideWorkers = 8
)

// Provide announces now that this node provides c, and remembers c to
// announce it again every reprovide interval. When the DHT has no peers
// yet (an offline node, or one still bootstrapping) nothing is sent and
// nil is returned: c is announced after the next Bootstrap or at the next
// reprovide.
func (r *Router) Provide(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return errors.New("routing: provide of an undefined CID")
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.provided[c] = struct{}{}
	r.pending[c] = struct{}{}
	r.mu.Unlock()
	if !r.hasPeers() {
		r.log.Debug("provide deferred: no DHT peers", "cid", c)
		return nil
	}
	if err := r.announce(ctx, c); err != nil {
		return fmt.Errorf("routing: provide %s: %w", c, err)
	}
	return nil
}

// ProvideAsync adds cids to the provided set and has the router's loop
// announce them soon, provideWorkers at a time; it never waits on the
// network: its cost is one map insertion per CID under the router's lock.
// On a closed Router it does nothing. The provided set holds every CID
// given until Close: on a store of millions of blocks, that is tens of
// bytes each.
func (r *Router) ProvideAsync(cids ...cid.Cid) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	for _, c := range cids {
		if c.Defined() {
			r.provided[c] = struct{}{}
			r.pending[c] = struct{}{}
		}
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// announce sends c's provider record and takes c off the pending set.
func (r *Router) announce(ctx context.Context, c cid.Cid) error {
	ctx, cancel := context.WithTimeout(ctx, provideTimeout)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	if err := r.dht.Provide(ctx, c, true); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.pending, c)
	r.mu.Unlock()
	return nil
}

// loop announces the pending CIDs when kicked and every CID each interval.
func (r *Router) loop() {
	var tick <-chan time.Time
	if r.interval > 0 {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var all bool
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-tick:
			all = true
		}
		r.reprovide(all)
	}
}

// reprovide announces every provided CID, or only the pending ones,
// provideWorkers at a time.
func (r *Router) reprovide(all bool) {
	if !r.hasPeers() {
		return
	}
	r.mu.Lock()
	set := r.pending
	if all {
		set = r.provided
	}
	cids := make([]cid.Cid, 0, len(set))
	for c := range set {
		cids = append(cids, c)
	}
	r.mu.Unlock()
	if len(cids) == 0 {
		return
	}
	start := time.Now()
	var (
		wg     sync.WaitGroup
		sem    = make(chan struct{}, provideWorkers)
		failed atomic.Int64
	)
	for _, c := range cids {
		select {
		case sem <- struct{}{}:
		case <-r.ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.announce(r.ctx, c); err != nil {
				failed.Add(1)
				r.log.Debug("reprovide failed", "cid", c, "err", err)
			}
		})
	}
	wg.Wait()
	// New CIDs come in batches as blocks are fetched: only a full
	// reprovide is worth a line at Info.
	level := slog.LevelDebug
	if all {
		level = slog.LevelInfo
	}
	r.log.Log(r.ctx, level, "reprovided", "cids", len(cids), "failed", failed.Load(), "took", time.Since(start))
}
