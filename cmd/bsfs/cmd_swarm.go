package main

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/node"
)

func newSwarmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Connect to peers and list them (needs a running daemon)",
	}
	cmd.AddCommand(newSwarmConnectCmd(), newSwarmPeersCmd())
	return cmd
}

func newSwarmConnectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "connect <multiaddr>",
		Short: "Open a connection to a peer",
		Long: fmt.Sprintf(`Open a connection to the peer at <multiaddr>, which must end in
/p2p/<peer ID>, for example
  bsfs swarm connect /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
Gives up after %s.`, node.ConnectTimeout),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := ma.NewMultiaddr(args[0])
			if err != nil {
				return fmt.Errorf("invalid multiaddr %q: %w", args[0], err)
			}
			if _, err := peer.AddrInfoFromP2pAddr(addr); err != nil {
				return fmt.Errorf("%s: the address must end in /p2p/<peer ID>", addr)
			}
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				id, err := n.Connect(cmd.Context(), addr)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "connect %s success\n", id)
				return nil
			})
		},
	}
}

func newSwarmPeersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the open connections, one <multiaddr>/p2p/<peer ID> a line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				peers, err := n.Peers(cmd.Context())
				if err != nil {
					return err
				}
				for _, p := range peers {
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
				return nil
			})
		},
	}
}
