package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/exchange"
)

func newStatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stat",
		Short: "Show the exchange's figures: blocks and bytes each way, duplicates, wantlist, peers",
		Long: `Show the daemon's Bitswap figures, those of 'ipfs bitswap stat': blocks and
bytes received and sent, duplicate blocks and bytes, messages, the size of
the wantlist and the connected peers. Blocks and bytes received count those
from HTTP gateways too; "via http" is their part, and the connected
gateways are listed. Needs a running daemon.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				s, err := n.Stat(cmd.Context())
				if err != nil {
					return err
				}
				printStat(cmd.OutOrStdout(), s)
				return nil
			})
		},
	}
}

func printStat(w io.Writer, s exchange.Stats) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintln(tw, "bitswap status")
	for _, row := range []struct {
		name  string
		value uint64
	}{
		{"blocks received", s.BlocksReceived},
		{"data received", s.DataReceived},
		{"blocks via http", s.HTTPBlocksReceived},
		{"data via http", s.HTTPDataReceived},
		{"dup blocks received", s.DupBlksReceived},
		{"dup data received", s.DupDataReceived},
		{"unwanted blocks", s.UnwantedBlocks},
		{"invalid blocks", s.InvalidBlocks},
		{"blocks sent", s.BlocksSent},
		{"data sent", s.DataSent},
		{"messages received", s.MessagesReceived},
		{"messages sent", s.MessagesSent},
	} {
		fmt.Fprintf(tw, "\t%s:\t%d\n", row.name, row.value)
	}
	fmt.Fprintf(tw, "\twantlist:\t%d keys\n", s.Wantlist)
	fmt.Fprintf(tw, "\tpartners:\t%d\n", len(s.Peers))
	fmt.Fprintf(tw, "\thttp gateways:\t%d\n", len(s.HTTPGateways))
	for _, g := range s.HTTPGateways {
		fmt.Fprintf(tw, "\t\t%s\n", g)
	}
	tw.Flush()
}

func newLedgerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ledger PEER",
		Short: "Show what this node and PEER exchanged, and PEER's wantlist size",
		Long: `Show the decision engine's ledger of PEER (a peer ID): bytes and blocks sent
and received, and how many blocks PEER wants from this node. Needs a
running daemon.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := peer.Decode(args[0])
			if err != nil {
				return fmt.Errorf("invalid peer ID %q: %w", args[0], err)
			}
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				l, err := n.Ledger(cmd.Context(), p)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 1, ' ', 0)
				fmt.Fprintf(tw, "Ledger for %s\n", l.Peer)
				fmt.Fprintf(tw, "\tbytes sent:\t%d\n\tbytes received:\t%d\n", l.BytesSent, l.BytesReceived)
				fmt.Fprintf(tw, "\tblocks sent:\t%d\n\tblocks received:\t%d\n", l.BlocksSent, l.BlocksReceived)
				fmt.Fprintf(tw, "\twantlist:\t%d keys\n", l.WantlistSize)
				return tw.Flush()
			})
		},
	}
}

func newWantlistCmd() *cobra.Command {
	var peerID string
	cmd := &cobra.Command{
		Use:   "wantlist [--peer ID]",
		Short: "List the CIDs this node wants, or those --peer wants from it, one a line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p peer.ID
			if peerID != "" {
				var err error
				if p, err = peer.Decode(peerID); err != nil {
					return fmt.Errorf("invalid peer ID %q: %w", peerID, err)
				}
			}
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				wants, err := n.Wantlist(cmd.Context())
				if p != "" {
					wants, err = n.PeerWantlist(cmd.Context(), p)
				}
				if err != nil {
					return err
				}
				for _, c := range wants {
					fmt.Fprintln(cmd.OutOrStdout(), c)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&peerID, "peer", "", "show the wantlist this peer sent to this node")
	return cmd
}
