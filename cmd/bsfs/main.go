// Command bsfs is an IPFS Bitswap node. `bsfs daemon` runs the node: a
// libp2p host and the Bitswap exchange over the repository's blockstore,
// with a local API on a unix socket in the repository. The other commands
// talk to that daemon when one runs, and open the repository directly
// otherwise.
//
// The repository is $BSFS_PATH, or ~/.bsfs; commands create it with
// defaults on first use.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a clean shutdown; a second one kills.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code. ctx ends on
// SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(stderr, "Error: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// newRootCmd builds the command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bsfs",
		Short: "An IPFS Bitswap node",
		Long: `bsfs is an IPFS Bitswap node that interoperates with Kubo.

Its repository is $BSFS_PATH, or ~/.bsfs when unset. Commands create it with
defaults on first use. While 'bsfs daemon' runs, the other commands go
through the daemon's API socket in the repository; otherwise they open the
repository directly, offline.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(newInitCmd(), newIDCmd(), newDaemonCmd(), newBlockCmd(), newSwarmCmd(), newStatCmd(), newLedgerCmd(), newWantlistCmd())
	root.AddCommand(newMountCmd())
	root.AddCommand(newAddCmd(), newCatCmd(), newGetCmd(), newLsCmd(), newRefsCmd(), newDagCmd())
	root.AddCommand(newPinCmd(), newGCCmd(), newExportCmd(), newImportCmd())
	root.AddCommand(newRoutingCmd(), newNameCmd(), newKeyCmd(), newVersionCmd())
	return root
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
