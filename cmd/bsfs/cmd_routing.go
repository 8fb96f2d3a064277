package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
)

// The content routing endpoints of `bsfs routing`. findprovs answers with
// the providers' peer IDs, one a line, written as the lookup finds them.
const (
	pathFindProvs = "/v0/routing/findprovs"
	pathProvide   = "/v0/routing/provide"
	// defaultNumProviders is findprovs' default -n, Kubo's.
	defaultNumProviders = 20
)

// errRoutingOff is returned by the routing commands on a node that runs no
// content routing.
var errRoutingOff = errors.New("the daemon runs no content routing (Routing.Type is \"none\" or --routing none was given)")

func newRoutingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routing",
		Short: "Find providers and announce content on the DHT (needs a running daemon)",
	}
	cmd.AddCommand(newFindProvsCmd(), newProvideCmd())
	return cmd
}

func newFindProvsCmd() *cobra.Command {
	var num int
	cmd := &cobra.Command{
		Use:   "findprovs CID",
		Short: "Find peers that provide CID",
		Long: `Look up the peers that provide CID in the content routing (the DHT) and
print each one's peer ID, one a line, as it is found, as 'ipfs routing
findprovs' does. The lookup ends when it has found -n providers or asked
every peer it could; this node is not listed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			if num < 1 {
				return fmt.Errorf("-n %d: want at least 1", num)
			}
			return withDaemon(cmd.Context(), func(n node) error {
				out := cmd.OutOrStdout()
				return n.FindProviders(cmd.Context(), c, num, func(p peer.ID) error {
					_, err := fmt.Fprintln(out, p)
					return err
				})
			})
		},
	}
	cmd.Flags().IntVarP(&num, "num-providers", "n", defaultNumProviders, "the number of providers to find")
	return cmd
}

func newProvideCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "provide CID",
		Short: "Announce that this node provides CID",
		Long: `Announce to the content routing (the DHT) that this node provides CID,
and keep announcing it at each reprovide. The block must be stored
locally, and the node must be connected to peers, as for 'ipfs routing
provide'. It returns once the announcement has been sent.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			return withDaemon(cmd.Context(), func(n node) error {
				return n.Provide(cmd.Context(), c)
			})
		},
	}
}

// FindProviders looks up c's providers, up to max, and calls found with
// each as the lookup finds it.
func (n *repoNode) FindProviders(ctx context.Context, c cid.Cid, max int, found func(peer.ID) error) error {
	if n.host == nil {
		return errNoDaemon
	}
	if n.router == nil {
		return errRoutingOff
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the lookup if found fails
	for ai := range n.router.FindProviders(ctx, c, max) {
		if err := found(ai.ID); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Provide announces c, which must be stored here, to the content routing.
func (n *repoNode) Provide(ctx context.Context, c cid.Cid) error {
	if n.host == nil {
		return errNoDaemon
	}
	if n.router == nil {
		return errRoutingOff
	}
	cs, err := n.cacheOf(ctx)
	if err != nil {
		return err
	}
	has, err := cs.Has(ctx, c)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("block %s not found locally, cannot provide", c)
	}
	if len(n.host.Network().Peers()) == 0 {
		return errors.New("cannot provide, no connected peers")
	}
	return n.router.Provide(ctx, c)
}

// registerRoutingAPI serves findprovs and provide on the local API.
func registerRoutingAPI(mux *http.ServeMux, n node) {
	mux.HandleFunc("GET "+pathFindProvs, func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		num, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || num < 1 {
			writeError(w, badRequest(fmt.Errorf("query parameter n: want a count of at least 1, got %q", r.URL.Query().Get("n"))))
			return
		}
		rc := http.NewResponseController(w)
		started := false
		// The request's context ends when the client goes away, which ends
		// the lookup.
		err = n.FindProviders(r.Context(), c, num, func(p peer.ID) error {
			if !started {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				started = true
			}
			if _, err := fmt.Fprintln(w, p); err != nil {
				return err
			}
			return rc.Flush()
		})
		if err != nil && !started {
			writeError(w, err)
		}
	})
	mux.HandleFunc("POST "+pathProvide, func(w http.ResponseWriter, r *http.Request) {
		c, ok := cidArg(w, r)
		if !ok {
			return
		}
		if err := n.Provide(r.Context(), c); err != nil {
			writeError(w, err)
		}
	})
}

func (c *apiClient) FindProviders(ctx context.Context, k cid.Cid, max int, found func(peer.ID) error) error {
	resp, err := c.open(ctx, http.MethodGet, pathFindProvs, argQuery(k.String())+"&n="+strconv.Itoa(max), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		p, err := peer.Decode(strings.TrimSpace(sc.Text()))
		if err != nil {
			return fmt.Errorf("daemon API %s: %w", pathFindProvs, err)
		}
		if err := found(p); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("daemon API %s: %w", pathFindProvs, err)
	}
	return nil
}

func (c *apiClient) Provide(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathProvide, argQuery(k.String()), nil)
	return err
}
