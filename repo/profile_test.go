package repo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// checkPrivate fails the test unless c keeps the node on loopback: every
// listen address a loopback IP, no bootstrap peer, no delegated router.
func checkPrivate(t *testing.T, c Config) {
	t.Helper()
	if len(c.Addresses.Swarm) == 0 {
		t.Error("Addresses.Swarm empty, want loopback addresses")
	}
	for _, a := range c.Addresses.Swarm {
		m, err := ma.NewMultiaddr(a)
		if err != nil || !manet.IsIPLoopback(m) {
			t.Errorf("Addresses.Swarm %q is not a loopback address", a)
		}
	}
	if c.Bootstrap == nil || len(c.Bootstrap) != 0 {
		t.Errorf("Bootstrap = %#v, want empty", c.Bootstrap)
	}
	if c.Routing.DelegatedRouters == nil || len(c.Routing.DelegatedRouters) != 0 {
		t.Errorf("Routing.DelegatedRouters = %#v, want empty", c.Routing.DelegatedRouters)
	}
	if !c.Swarm.DisableNatPortMap || On(c.Swarm.EnableHolePunching) || On(c.Swarm.RelayClient.Enabled) || c.AutoNAT.ServiceMode != AutoNATDisabled {
		t.Errorf("NAT traversal not all off: Swarm %+v, AutoNAT %+v", c.Swarm, c.AutoNAT)
	}
	if c.Routing.Type != RoutingDHT {
		t.Errorf("Routing.Type = %q, want %q", c.Routing.Type, RoutingDHT)
	}
}

// readOnDisk loads the config file of the repository at path as written.
func readOnDisk(t *testing.T, path string) Config {
	t.Helper()
	c, err := readConfig(filepath.Join(path, "config"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInitTestProfile(t *testing.T) {
	t.Setenv(EnvInitProfile, "")
	path := t.TempDir()
	r := closeT(t, mustInit(t, path, ProfileTest))
	checkPrivate(t, r.Config)
	checkPrivate(t, readOnDisk(t, path))
}

// Every way a repository gets created honours $BSFS_INIT_PROFILE: Open of a
// missing one, and Init with no profile given.
func TestEnvInitProfile(t *testing.T) {
	t.Setenv(EnvInitProfile, " test ,")
	opened := filepath.Join(t.TempDir(), "opened")
	checkPrivate(t, closeT(t, mustOpen(t, opened)).Config)
	checkPrivate(t, readOnDisk(t, opened))
	inited := t.TempDir()
	checkPrivate(t, closeT(t, mustInit(t, inited)).Config)
	checkPrivate(t, readOnDisk(t, inited))
}

// An unknown profile, given or in the environment, creates nothing: a
// misspelt BSFS_INIT_PROFILE must not fall back to the defaults.
func TestUnknownProfileRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		env   string
		given []string
	}{
		"Given":       {given: []string{"tset"}},
		"Environment": {env: "test,tset"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvInitProfile, tc.env)
			path := t.TempDir()
			var err error
			if tc.given != nil {
				_, err = Init(path, tc.given...)
			} else {
				_, err = Open(path)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"tset"`) {
				t.Fatalf("err = %v, want ErrConfig naming the profile", err)
			}
			if _, err := os.Stat(filepath.Join(path, "config")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("config after the failure: %v, want none", err)
			}
		})
	}
}

func mustInit(t *testing.T, path string, profiles ...string) *Repo {
	t.Helper()
	r, err := Init(path, profiles...)
	if err != nil {
		t.Fatalf("Init(%s, %q): %v", path, profiles, err)
	}
	return r
}
