package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/repo"
)

// readyLine is the daemon's last line of start-up output.
const readyLine = "Daemon is ready"

// shutdownTimeout bounds waiting for API requests in flight at shutdown.
const shutdownTimeout = 5 * time.Second

// daemonFlags are the daemon's overrides of the config.
type daemonFlags struct {
	listen    []string
	protocols string
}

func newDaemonCmd() *cobra.Command {
	var flags daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: libp2p host, Bitswap and the local API",
		Long: fmt.Sprintf(`Run the node until SIGINT or SIGTERM: open the repository (creating it if
absent), start the libp2p host and the Bitswap exchange, and serve the
local API on the socket api.sock in the repository.

It prints the peer ID, each listen address ending in /p2p/<peer ID>, and
then the line %q.`, readyLine),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), cmd.OutOrStdout(), flags)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&flags.listen, "listen", nil, "multiaddr to listen on, instead of the config's Addresses.Swarm (repeatable)")
	f.StringVar(&flags.protocols, "bitswap-protocols", "", "comma-separated Bitswap protocol IDs to speak, instead of the config's Bitswap.Protocols (e.g. /ipfs/bitswap/1.2.0,/ipfs/bitswap/1.0.0)")
	return cmd
}

// runDaemon runs the node until ctx ends, then shuts it down.
func runDaemon(ctx context.Context, out io.Writer, flags daemonFlags) error {
	if flags.protocols != "" {
		// Refuse a bad flag before touching the repository.
		if _, err := bitswapProtocols(strings.Split(flags.protocols, ",")); err != nil {
			return err
		}
	}
	path, err := repo.DefaultPath()
	if err != nil {
		return err
	}
	r, err := repo.Open(path)
	if err != nil {
		if errors.Is(err, repo.ErrLocked) {
			return fmt.Errorf("%w: is another daemon running on this repository?", err)
		}
		return err
	}
	n, err := startNode(r, flags)
	if err != nil {
		return errors.Join(err, r.Close())
	}
	sock := r.APISocket()
	// We hold the repository's lock, so a socket left there is stale.
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Join(fmt.Errorf("removing stale API socket: %w", err), n.Close())
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return errors.Join(fmt.Errorf("API socket: %w", err), n.Close())
	}
	// The API has no authentication: only the repository's owner may use it.
	if err := os.Chmod(sock, 0o600); err != nil {
		return errors.Join(fmt.Errorf("API socket: %w", err), ln.Close(), n.Close())
	}
	// Cancelled at shutdown, so that block fetches in flight end.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           newAPIHandler(n),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	id := hostIdentity(n.host)
	fmt.Fprintf(out, "PeerID: %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(out, "Swarm listening on %s\n", a)
	}
	fmt.Fprintf(out, "API listening on %s\n", sock)
	fmt.Fprintln(out, readyLine)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	cancelRequests()
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	errs := []error{serveErr}
	if err := srv.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("API shutdown: %w", err), srv.Close())
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, n.Close())
	return errors.Join(errs...)
}

// startNode starts the host and the exchange on r.
func startNode(r *repo.Repo, flags daemonFlags) (*repoNode, error) {
	listen := r.Config.Addresses.Swarm
	if len(flags.listen) > 0 {
		listen = flags.listen
	}
	protoNames := r.Config.Bitswap.Protocols
	if flags.protocols != "" {
		protoNames = strings.Split(flags.protocols, ",")
	}
	protos, err := bitswapProtocols(protoNames)
	if err != nil {
		return nil, err
	}
	key, err := r.PrivKey()
	if err != nil {
		return nil, err
	}
	h, err := network.NewHost(network.HostConfig{Identity: key, ListenAddrs: listen})
	if err != nil {
		return nil, err
	}
	ex, err := exchange.New(h, r.Blockstore(), exchange.Config{Protocols: protos})
	if err != nil {
		return nil, errors.Join(err, h.Close())
	}
	return &repoNode{repo: r, host: h, ex: ex}, nil
}

// bitswapProtocols checks protocol names against those bsfs speaks.
func bitswapProtocols(names []string) ([]protocol.ID, error) {
	known := network.AllProtocols()
	var out []protocol.ID
	for _, name := range names {
		id := protocol.ID(strings.TrimSpace(name))
		if id == "" {
			continue
		}
		if !slices.Contains(known, id) {
			return nil, fmt.Errorf("unknown Bitswap protocol %q (known: %s)", id, protocolList(known))
		}
		out = append(out, id)
	}
	return out, nil
}

func protocolList(ids []protocol.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}
