package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/names"
)

func newNameCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "name",
		Short: "Publish and resolve IPNS names",
		Long: `IPNS names are keys: a name is the peer ID of a key (or the same as a
CIDv1 with the libp2p-key codec), and its record, signed with the key,
points at content. 'bsfs name publish' signs and publishes a record for
this node's key or another one ('bsfs key gen'); 'bsfs name resolve'
finds what a name, or a DNSLink domain, points at.`,
	}
	cmd.AddCommand(newNameResolveCmd())
	return cmd
}

func newNameResolveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resolve NAME",
		Short: "Print the /ipfs/ path an IPNS name or DNSLink domain points at",
		Long: `Resolve NAME and print the content path it points at, /ipfs/<cid>[/path],
as 'ipfs name resolve' does. NAME is an IPNS name (a peer ID, or a CIDv1
with the libp2p-key codec) or a domain with a DNSLink TXT record at
_dnslink.<domain>, bare or as /ipns/NAME, optionally followed by a path;
chains of names are followed, up to 32 of them.

IPNS records come from the DHT and the delegated routers
(Routing.DelegatedRouters, when Routing.Type is "auto" or "delegated"),
through the daemon when one runs, else from the delegated routers alone.
DNSLink asks the DNS-over-HTTPS resolvers of DNS.Resolvers, or the
system's resolver. The answer is kept for its TTL, capped by
Ipns.MaxCacheTTL.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNode(cmd.Context(), func(n daemonNode) error {
				res, err := n.ResolveName(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), resolvedPath(res))
				return nil
			})
		},
	}
}

// resolvedPath is res as a content path, /ipfs/<cid>[/path].
func resolvedPath(res names.Resolved) string {
	return "/" + strings.Join(append([]string{"ipfs", res.Root.String()}, res.Rest...), "/")
}
