package main

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"
)

func newPinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Keep DAGs from eviction and GC",
		Long: `Pins are recursive: a pinned CID keeps its whole DAG on disk, whatever the
cache's quota, and 'bsfs gc' leaves it. What 'bsfs add' adds and what
'bsfs import' imports is pinned.`,
	}
	add := &cobra.Command{
		Use:   "add CID",
		Short: "Pin a DAG, fetching what is not local (with a running daemon)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pinCommand(cmd, args[0], "pinned", pinner.Pin)
		},
	}
	rm := &cobra.Command{
		Use:   "rm CID",
		Short: "Unpin a DAG: its blocks become evictable",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pinCommand(cmd, args[0], "unpinned", pinner.Unpin)
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the pinned CIDs, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNode(cmd.Context(), func(n daemonNode) error { return pinLs(cmd, n) })
		},
	}
	cmd.AddCommand(add, rm, ls)
	return cmd
}

// pinner is what the pin commands use.
type pinner interface {
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
	Pins(ctx context.Context) ([]cid.Cid, error)
	Online() bool
}

func pinCommand(cmd *cobra.Command, arg, done string, op func(pinner, context.Context, cid.Cid) error) error {
	c, err := parseCID(arg)
	if err != nil {
		return err
	}
	return withNode(cmd.Context(), func(n daemonNode) error {
		if err := offlineHint(op(n, cmd.Context(), c), n.Online()); err != nil {
			return err
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, c)
		return err
	})
}

func pinLs(cmd *cobra.Command, n pinner) error {
	pins, err := n.Pins(cmd.Context())
	if err != nil {
		return err
	}
	for _, c := range pins {
		fmt.Fprintf(cmd.OutOrStdout(), "%s recursive\n", c)
	}
	return nil
}
