package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	mountfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/node"
	"github.com/bsfs/bsfs/repo"
)

// readyLine is the daemon's last line of start-up output.
const readyLine = "Daemon is ready"

// unmountTimeout bounds waiting for the daemon's mount to end at shutdown:
// long enough for a loaded machine to finish the kernel's requests in
// flight (5 s was once too short for a test run under the race detector).
const unmountTimeout = 15 * time.Second

// daemonFlags are the daemon's overrides of the config.
type daemonFlags struct {
	node node.Options
	// mount is a directory the daemon mounts its content at (daemon only).
	mount string
}

func newDaemonCmd() *cobra.Command {
	var flags daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: libp2p host, Bitswap and the local API",
		Long: fmt.Sprintf(`Run the node until SIGINT or SIGTERM: open the repository (creating it if
absent), start the libp2p host and the Bitswap exchange, and serve the
local API on the socket api.sock in the repository. A command holding the
repository is waited for, up to %s; another daemon is not.

It prints the peer ID, each listen address ending in /p2p/<peer ID>, and
then the line %q.`, lockWait, readyLine),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags.node.MetricsSet = cmd.Flags().Changed("metrics")
			return runDaemon(cmd.Context(), cmd.OutOrStdout(), flags)
		},
	}
	addNodeFlags(cmd, &flags.node)
	cmd.Flags().StringVar(&flags.mount, "mount", "", "also mount the content at this existing directory, as `bsfs mount` does")
	return cmd
}

// addNodeFlags adds the flags of a command that runs a node.
func addNodeFlags(cmd *cobra.Command, flags *node.Options) {
	f := cmd.Flags()
	f.StringVar(&flags.Routing, "routing", "", `"auto", "dht", "delegated" or "none", instead of the config's Routing.Type`)
	f.StringVar(&flags.Metrics, "metrics", "", `host:port to serve Prometheus metrics and pprof on, instead of the config's Metrics.Address ("" turns them off)`)
	f.StringArrayVar(&flags.Listen, "listen", nil, "multiaddr to listen on, instead of the config's Addresses.Swarm (repeatable)")
	f.StringVar(&flags.CacheSize, "cache-size", "", `quota of fetched, unpinned blocks, such as 10GiB or "none", instead of the config's Cache.Size (default 10GiB)`)
	f.StringVar(&flags.Blocks, "blocks", "", "a flatfs blocks directory (such as a Kubo repository's blocks/) to serve read-only besides ours, instead of the config's Cache.SharedBlocks")
	f.StringVar(&flags.Protocols, "bitswap-protocols", "", "comma-separated Bitswap protocol IDs to speak, instead of the config's Bitswap.Protocols (e.g. /ipfs/bitswap/1.2.0,/ipfs/bitswap/1.0.0)")
}

// runDaemon runs the node until ctx ends, then shuts it down.
func runDaemon(ctx context.Context, out io.Writer, flags daemonFlags) error {
	if flags.node.Protocols != "" {
		// Refuse a bad flag before touching the repository.
		if _, err := node.BitswapProtocols(strings.Split(flags.node.Protocols, ",")); err != nil {
			return err
		}
	}
	if flags.mount != "" {
		// Likewise a mount that cannot be made.
		if err := mountfs.Check(flags.mount); err != nil {
			return err
		}
	}
	path, err := repo.DefaultPath()
	if err != nil {
		return err
	}
	r, err := node.OpenRepo(ctx, path)
	if err != nil {
		return err
	}
	n, l, err := serveNode(ctx, out, r, flags.node)
	if err != nil {
		return err
	}
	mounted := make(chan error, 1)
	if flags.mount != "" {
		g, cfg := n.Mount(mountfs.Config{ReadTimeout: defaultReadTimeout, Logger: slog.Default()})
		mctx, stopMount := context.WithCancel(ctx)
		defer stopMount()
		go func() { mounted <- serveMount(mctx, out, flags.mount, g, withNames(cfg, n)) }()
	}
	fmt.Fprintln(out, readyLine)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-l.Served():
	}
	if flags.mount != "" {
		select {
		case err := <-mounted:
			serveErr = errors.Join(serveErr, err)
		case <-time.After(unmountTimeout):
			serveErr = errors.Join(serveErr, fmt.Errorf("unmounting %s timed out", flags.mount))
		}
	}
	return errors.Join(serveErr, l.Close(), n.Close())
}

// serveNode starts a node on r, serves its API on r's socket and prints
// what it offers. Closing the listener, then the node, ends them and r.
func serveNode(ctx context.Context, out io.Writer, r *repo.Repo, opts node.Options) (*node.Node, *api.Listener, error) {
	n, err := node.Start(r, opts)
	if err != nil {
		return nil, nil, errors.Join(err, r.Close())
	}
	l, err := api.Serve(ctx, r.APISocket(), n)
	if err != nil {
		return nil, nil, errors.Join(err, n.Close())
	}
	printNode(ctx, out, n, l)
	return n, l, nil
}

// printNode prints what a started node offers: its peer ID, each listen
// address, the API socket and the metrics URL.
func printNode(ctx context.Context, out io.Writer, n *node.Node, l *api.Listener) {
	id, _ := n.Identity(ctx) // a started node's identity is its host's
	fmt.Fprintf(out, "PeerID: %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(out, "Swarm listening on %s\n", a)
	}
	fmt.Fprintf(out, "API listening on %s\n", l.Socket)
	if addr := n.MetricsAddr(); addr != "" {
		fmt.Fprintf(out, "Metrics on http://%s/metrics\n", addr)
	}
}
