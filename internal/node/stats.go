package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/internal/api"
)

// Stat returns the exchange's counters.
func (n *Node) Stat(context.Context) (exchange.Stats, error) {
	if n.ex == nil {
		return exchange.Stats{}, api.ErrNoDaemon
	}
	return n.ex.Stats(), nil
}

// Ledger returns what the decision engine keeps of p: the ledger the
// engine serves from, not a copy.
func (n *Node) Ledger(_ context.Context, p peer.ID) (decision.LedgerStat, error) {
	if n.ex == nil {
		return decision.LedgerStat{}, api.ErrNoDaemon
	}
	l, ok := n.ex.Engine().Ledger(p)
	if !ok {
		return decision.LedgerStat{}, fmt.Errorf("no ledger for peer %s: it is not connected and has exchanged nothing", p)
	}
	return l, nil
}

// PeerWantlist returns the blocks p wants from this node.
func (n *Node) PeerWantlist(_ context.Context, p peer.ID) ([]cid.Cid, error) {
	if n.ex == nil {
		return nil, api.ErrNoDaemon
	}
	es := n.ex.Engine().WantlistFor(p)
	out := make([]cid.Cid, len(es))
	for i, e := range es {
		out[i] = e.CID
	}
	return out, nil
}
