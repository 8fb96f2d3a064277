package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/decision"
)

// The figures of `bsfs stat`, `bsfs ledger` and `bsfs wantlist --peer`.
const (
	pathStat         = "/v0/stat"
	pathLedger       = "/v0/ledger"
	pathPeerWantlist = "/v0/wantlist/peer"
)

// Stat returns the exchange's counters.
func (n *repoNode) Stat(context.Context) (exchange.Stats, error) {
	if n.ex == nil {
		return exchange.Stats{}, errNoDaemon
	}
	return n.ex.Stats(), nil
}

// Ledger returns what the decision engine keeps of p: the ledger the
// engine serves from, not a copy.
func (n *repoNode) Ledger(_ context.Context, p peer.ID) (decision.LedgerStat, error) {
	if n.ex == nil {
		return decision.LedgerStat{}, errNoDaemon
	}
	l, ok := n.ex.Engine().Ledger(p)
	if !ok {
		return decision.LedgerStat{}, fmt.Errorf("no ledger for peer %s: it is not connected and has exchanged nothing", p)
	}
	return l, nil
}

// PeerWantlist returns the blocks p wants from this node.
func (n *repoNode) PeerWantlist(_ context.Context, p peer.ID) ([]cid.Cid, error) {
	if n.ex == nil {
		return nil, errNoDaemon
	}
	es := n.ex.Engine().WantlistFor(p)
	out := make([]cid.Cid, len(es))
	for i, e := range es {
		out[i] = e.CID
	}
	return out, nil
}

// registerStatsAPI serves the figures on the local API.
func registerStatsAPI(mux *http.ServeMux, n node) {
	mux.HandleFunc("GET "+pathStat, func(w http.ResponseWriter, r *http.Request) {
		s, err := n.Stat(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, s)
	})
	mux.HandleFunc("GET "+pathLedger, func(w http.ResponseWriter, r *http.Request) {
		p, err := peer.Decode(r.URL.Query().Get("arg"))
		if err != nil {
			writeError(w, badRequest(fmt.Errorf("invalid peer ID: %w", err)))
			return
		}
		l, err := n.Ledger(r.Context(), p)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, l)
	})
	mux.HandleFunc("GET "+pathPeerWantlist, func(w http.ResponseWriter, r *http.Request) {
		p, err := peer.Decode(r.URL.Query().Get("arg"))
		if err != nil {
			writeError(w, badRequest(fmt.Errorf("invalid peer ID: %w", err)))
			return
		}
		cs, err := n.PeerWantlist(r.Context(), p)
		if err != nil {
			writeError(w, err)
			return
		}
		strs := make([]string, len(cs))
		for i, c := range cs {
			strs[i] = c.String()
		}
		writeJSON(w, strs)
	})
}

func (c *apiClient) Stat(ctx context.Context) (exchange.Stats, error) {
	var s exchange.Stats
	err := c.getJSON(ctx, pathStat, &s)
	return s, err
}

func (c *apiClient) Ledger(ctx context.Context, p peer.ID) (decision.LedgerStat, error) {
	var l decision.LedgerStat
	err := c.getJSON(ctx, pathLedger+"?"+argQuery(p.String()), &l)
	return l, err
}

func (c *apiClient) PeerWantlist(ctx context.Context, p peer.ID) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathPeerWantlist+"?arg="+url.QueryEscape(p.String()))
}
