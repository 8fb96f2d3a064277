package repo

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// EnvInitProfile is the environment variable naming the profiles
// (comma-separated) applied to every repository this process creates, by
// Init or by Open of a missing repository, after any given to Init. Tests
// and benchmarks set it to "test" once for themselves and every process
// they start, so that no repository they create can get the public
// defaults. A name that is not a profile makes creation fail.
const EnvInitProfile = "BSFS_INIT_PROFILE"

// ProfileTest is Kubo's name for the profile of a node that must stay on
// the machine: see [ApplyProfile].
const ProfileTest = "test"

// Profiles returns the names of the profiles [ApplyProfile] knows.
func Profiles() []string { return []string{ProfileTest} }

// ApplyProfile changes c as the named profile says. There is one:
//
//   - "test": listen on loopback only (TCP and QUIC, ports chosen by the
//     system), no bootstrap peers, no delegated routers, routing by the DHT
//     alone, and no UPnP/NAT-PMP, relay client, hole punching, AutoNAT or
//     mDNS, so that nothing the node does leaves the loopback interface.
func ApplyProfile(c *Config, name string) error {
	switch name {
	case ProfileTest:
		c.Addresses.Swarm = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		c.Bootstrap = []string{}
		c.Routing.Type = RoutingDHT
		c.Routing.DelegatedRouters = []string{}
		off := false
		c.Swarm.DisableNatPortMap = true
		c.Swarm.EnableHolePunching = &off
		c.Swarm.RelayClient.Enabled = &off
		c.AutoNAT.ServiceMode = AutoNATDisabled
		return nil
	default:
		return fmt.Errorf("%w: unknown profile %q (known: %q)", ErrConfig, name, Profiles())
	}
}

// initProfiles returns the profiles to apply to a repository being
// created: those given, then those $BSFS_INIT_PROFILE names that were not
// given.
func initProfiles(given []string) []string {
	out := slices.Clone(given)
	for name := range strings.SplitSeq(os.Getenv(EnvInitProfile), ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}
