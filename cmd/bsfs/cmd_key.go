package main

import (
	"fmt"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/repo"
)

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make and list the keys IPNS names are published with",
		Long: `Keys sign IPNS records: each key is an IPNS name. "self" is the node's own
key; others are made with 'bsfs key gen NAME' and kept in the repository's
keystore/ directory, readable by its owner only.`,
	}
	cmd.AddCommand(newKeyGenCmd(), newKeyListCmd())
	return cmd
}

func newKeyGenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gen NAME",
		Short: "Make a new Ed25519 key called NAME and print its IPNS name",
		Long: `Make a new Ed25519 key called NAME in the repository's keystore and print
its IPNS name (a CIDv1), as 'ipfs key gen' does. NAME is 1 to 64 letters,
digits, '.', '_' or '-', not starting with '.'; "self" is taken. Publish
with it by 'bsfs name publish --key NAME'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := repo.DefaultPath()
			if err != nil {
				return err
			}
			if err := ensureRepo(cmd, path); err != nil {
				return err
			}
			id, err := repo.GenKey(path, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ipns.NameFromPeer(id))
			return nil
		},
	}
}

func newKeyListCmd() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the keys: self, then those made with 'bsfs key gen'",
		Long: `Print the name of each key, one a line, "self" first; with -l each line
is the key's IPNS name (a CIDv1), a space, and the key's name, as 'ipfs key
list -l' prints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := repo.DefaultPath()
			if err != nil {
				return err
			}
			if err := ensureRepo(cmd, path); err != nil {
				return err
			}
			keys, err := repo.ListKeys(path)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if long {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", ipns.NameFromPeer(k.ID), k.Name)
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), k.Name)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&long, "l", "l", false, "also print each key's IPNS name")
	return cmd
}

// ensureRepo creates the repository at path, as every command does on
// first use, unless its config is there already (a daemon may hold it).
func ensureRepo(cmd *cobra.Command, path string) error {
	if _, err := repo.ReadConfig(path); err == nil {
		return nil
	}
	return withNode(cmd.Context(), func(daemonNode) error { return nil })
}
