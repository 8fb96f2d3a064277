package main

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/repo"
)

func newInitCmd() *cobra.Command {
	var profiles []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the repository and its identity",
		Long: fmt.Sprintf(`Create the repository at $BSFS_PATH (default ~/.bsfs) with a new identity
and the default config, and print the peer ID. Fails if the repository
already exists.

The default config joins the public IPFS network: it listens on every
interface (TCP and QUIC, port 4002), bootstraps from the public bootstrap
peers and asks the DHT and https://cid.contact for providers. The profile
"test" keeps the node on the machine instead: loopback addresses only, no
bootstrap peers, no delegated routers, no NAT port mapping, relay, hole
punching or AutoNAT. $%s names profiles applied to every repository a
command creates, this one included.`, repo.EnvInitProfile),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := repo.DefaultPath()
			if err != nil {
				return err
			}
			r, err := repo.Init(path, profiles...)
			if err != nil {
				return err
			}
			key, err := r.PrivKey()
			if err != nil {
				return errors.Join(err, r.Close())
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return errors.Join(err, r.Close())
			}
			if err := r.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialized repository %s\npeer identity: %s\n", path, id)
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&profiles, "profile", "p", nil, fmt.Sprintf("apply these profiles (comma-separated) to the new config: %q", repo.Profiles()))
	return cmd
}

func newIDCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Show the peer ID, addresses and reachability",
		Long: `Print the peer ID, then each address the running daemon can be reached at
(those it listens on and those its peers observed and confirmed), ending
in /p2p/<peer ID>, one a line. With --verbose a last line
"Reachability: public|private|unknown" tells what AutoNAT found: whether
peers could dial this node back ("unknown" until a peer offering AutoNAT
has tried, and on loopback). Without a daemon only the peer ID is printed,
and a note on stderr says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := openNode(cmd.Context())
			if err != nil {
				return err
			}
			id, err := n.Identity(cmd.Context())
			if cerr := n.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, id.ID)
			for _, a := range id.Addrs {
				fmt.Fprintln(out, a)
			}
			if verbose && id.Reachability != "" {
				fmt.Fprintf(out, "Reachability: %s\n", id.Reachability)
			}
			if !n.Online() {
				fmt.Fprintln(cmd.ErrOrStderr(), "no daemon runs on this repository, so no listen addresses: start one with `bsfs daemon`")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print the reachability AutoNAT found, on a last line \"Reachability: ...\"")
	return cmd
}
