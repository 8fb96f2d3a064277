package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newGCCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Delete every block no pin keeps",
		Long: `Delete now every block of the repository's own store that no pin keeps
and no read in progress is using, and print what was removed. Blocks of a
shared blocks directory (--blocks) are never touched. Adds in progress
finish first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNode(cmd.Context(), func(n daemonNode) error {
				res, err := n.GC(cmd.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed %d blocks, %d bytes\n", res.Blocks, res.Bytes)
				return err
			})
		},
	}
}
