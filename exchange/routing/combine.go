package routing

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange"
)

// Combine returns a finder that asks every one of finders at once and
// merges their answers as they arrive: each provider is sent once (the
// first answer about a peer wins), up to max of them (all when max <= 0).
// Its channel is closed when every finder has closed its own, ctx ends or
// max is reached; the finders' channels are read to their end first, so
// no lookup is left running behind it.
func Combine(finders ...exchange.ProviderFinder) exchange.ProviderFinder {
	if len(finders) == 1 {
		return finders[0]
	}
	return combined(finders)
}

// combined is the finder Combine returns for more than one finder.
type combined []exchange.ProviderFinder

func (cf combined) FindProviders(ctx context.Context, c cid.Cid, max int) <-chan peer.AddrInfo {
	ctx, cancel := context.WithCancel(ctx)
	found := make(chan peer.AddrInfo)
	var wg sync.WaitGroup
	for _, f := range cf {
		ch := f.FindProviders(ctx, c, max)
		wg.Go(func() {
			for ai := range ch {
				found <- ai // merge reads found to its end
			}
		})
	}
	// Both goroutines end once every finder has closed its channel, which
	// each does when ctx ends: merge cancels ctx before it returns.
	go func() {
		wg.Wait()
		close(found)
	}()
	out := make(chan peer.AddrInfo)
	go merge(ctx, cancel, found, out, max, "")
	return out
}

// merge sends on out each peer that arrives on in once, leaving out self,
// until max are sent (no limit when max <= 0) or ctx ends; it then cancels
// ctx, reads in to its end and closes out.
func merge(ctx context.Context, cancel context.CancelFunc, in <-chan peer.AddrInfo, out chan<- peer.AddrInfo, max int, self peer.ID) {
	defer close(out)
	defer func() {
		cancel()
		for range in {
		}
	}()
	seen := make(map[peer.ID]struct{})
	for ai := range in {
		if _, dup := seen[ai.ID]; dup || ai.ID == self {
			continue
		}
		seen[ai.ID] = struct{}{}
		select {
		case out <- ai:
		case <-ctx.Done():
			return
		}
		if len(seen) == max {
			return
		}
	}
}
