package main

import (
	"fmt"
	"strings"

	"github.com/ipfs/boxo/path"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/repo"
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
	cmd.AddCommand(newNamePublishCmd(), newNameResolveCmd())
	return cmd
}

func newNamePublishCmd() *cobra.Command {
	var opts api.PublishOptions
	cmd := &cobra.Command{
		Use:   "publish CID|/ipfs/CID[/path]",
		Short: "Publish an IPNS record pointing at content (needs a running daemon)",
		Long: `Sign an IPNS record pointing at the content path given (a CID, or
/ipfs/<cid>[/path], or /ipns/<name>[/path]) with this node's key, or with
--key NAME for a key made with 'bsfs key gen', and publish it to the DHT
and the delegated routers (PUT /routing/v1/ipns/{name}). Prints
"Published to <name>: <path>", as 'ipfs name publish' does; the name is
the key's, as a CIDv1.

The record's sequence number follows the last one published with the key.
It is valid for --lifetime (Ipns.RecordLifetime, 48h by default), and the
daemon publishes it again every Ipns.RepublishPeriod (4h) so that it does
not expire; --ttl tells resolvers how long to keep the answer (5m).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := contentPath(args[0])
			if err != nil {
				return err
			}
			opts.Value = value
			if opts.Lifetime < 0 || opts.TTL < 0 {
				return fmt.Errorf("--lifetime and --ttl: want positive durations, such as 24h or 1m")
			}
			if opts.Key != "" && opts.Key != repo.SelfKey {
				if err := repo.CheckKeyName(opts.Key); err != nil {
					return err
				}
			}
			return withDaemon(cmd.Context(), func(n daemonNode) error {
				res, err := n.PublishName(cmd.Context(), opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Published to %s: %s\n", res.Name, res.Value)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&opts.Key, "key", "k", repo.SelfKey, "the key to sign with: \"self\" (the node's) or a name from 'bsfs key list'")
	cmd.Flags().DurationVarP(&opts.Lifetime, "lifetime", "t", 0, "how long the record stays valid (default Ipns.RecordLifetime, 48h)")
	cmd.Flags().DurationVar(&opts.TTL, "ttl", 0, "how long resolvers may keep the answer (default 5m)")
	return cmd
}

// contentPath reads a CID or a content path as a path.
func contentPath(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		c, err := parseCID(s)
		if err != nil {
			return "", err
		}
		return path.FromCid(c).String(), nil
	}
	p, err := path.NewPath(s)
	if err != nil {
		return "", fmt.Errorf("invalid path %q: want a CID, /ipfs/<cid>[/path] or /ipns/<name>[/path]", s)
	}
	if p.Namespace() == path.IPLDNamespace {
		return "", fmt.Errorf("invalid path %q: want /ipfs/ or /ipns/", s)
	}
	return p.String(), nil
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
