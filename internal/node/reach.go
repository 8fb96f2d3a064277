package node

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
)

// reachability follows what AutoNAT says of the host: whether other peers
// can dial it at its addresses.
type reachability struct {
	sub  event.Subscription
	done chan struct{} // closed when the watching goroutine has returned

	mu    sync.Mutex
	state lnet.Reachability // guarded by mu
}

// watchReachability subscribes to h's reachability events. AutoNAT tells
// the host's reachability only once peers that offer it have dialled the
// host back; until then, and for a host listening on loopback alone, it
// is unknown.
func watchReachability(h host.Host) (*reachability, error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return nil, err
	}
	r := &reachability{sub: sub, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for e := range sub.Out() {
			r.mu.Lock()
			r.state = e.(event.EvtLocalReachabilityChanged).Reachability
			r.mu.Unlock()
		}
	}()
	return r, nil
}

// String is "public", "private" or "unknown".
func (r *reachability) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case lnet.ReachabilityPublic:
		return "public"
	case lnet.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// close ends the subscription and waits for the watching goroutine.
func (r *reachability) close() error {
	err := r.sub.Close()
	<-r.done
	return err
}
