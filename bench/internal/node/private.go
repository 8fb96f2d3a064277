package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// checkPrivate refuses a bsfs repository whose config would take its node
// off the loopback interface: a listen address or bootstrap peer that is
// not a loopback IP (a /dnsaddr name included), or a delegated router. A
// repository not created yet passes: Env has it made with the test
// profile.
func checkPrivate(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "config"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var c struct {
		Addresses struct{ Swarm []string }
		Bootstrap []string
		Routing   struct{ DelegatedRouters []string }
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("%s config: %w", dir, err)
	}
	var bad []string
	for _, a := range slices.Concat(c.Addresses.Swarm, c.Bootstrap) {
		m, err := ma.NewMultiaddr(a)
		if err != nil || !manet.IsIPLoopback(m) {
			bad = append(bad, a)
		}
	}
	bad = append(bad, c.Routing.DelegatedRouters...)
	if len(bad) > 0 {
		return fmt.Errorf("bsfs repository %s would take its node off loopback (%q): benchmarks run on loopback only", dir, bad)
	}
	return nil
}
