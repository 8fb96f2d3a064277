package main

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
)

// defaultNumProviders is findprovs' default -n, Kubo's.
const defaultNumProviders = 20

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
			return withDaemon(cmd.Context(), func(n daemonNode) error {
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
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				return n.Provide(cmd.Context(), c)
			})
		},
	}
}
