package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/internal/node"
	repopkg "github.com/bsfs/bsfs/repo"
)

// initWith runs `bsfs init args...` on repoPath with BSFS_INIT_PROFILE set
// to profileEnv (empty: unset), and returns its exit code and stderr. No
// node runs: init only writes the repository.
func initWith(t *testing.T, repoPath, profileEnv string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bsfsBin, append([]string{"init"}, args...)...)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repoPath, repopkg.EnvInitProfile+"="+profileEnv)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		return exitErr.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// writtenConfig is what the tests read of a config file.
type writtenConfig struct {
	Addresses struct{ Swarm []string }
	Bootstrap []string
	Routing   struct {
		Type             string
		DelegatedRouters []string
	}
}

func readWritten(t *testing.T, repoPath string) (writtenConfig, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoPath, "config"))
	if err != nil {
		t.Fatal(err)
	}
	var c writtenConfig
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c, string(data)
}

// Issue 14: the config `bsfs init` writes joins the public network (Kubo's
// bootstrap peers, cid.contact, every interface); the test profile, by
// flag or environment, names none of it. The public config is only read:
// no node is started on it.
func TestInitProfiles(t *testing.T) {
	public := t.TempDir()
	if code, stderr := initWith(t, public, ""); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	c, _ := readWritten(t, public)
	wantSwarm := []string{
		"/ip4/0.0.0.0/tcp/4002",
		"/ip6/::/tcp/4002",
		"/ip4/0.0.0.0/udp/4002/quic-v1",
		"/ip6/::/udp/4002/quic-v1",
	}
	if !slices.Equal(c.Addresses.Swarm, wantSwarm) {
		t.Errorf("Addresses.Swarm = %q, want %q", c.Addresses.Swarm, wantSwarm)
	}
	wantBootstrap := []string{
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
		"/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8",
		"/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
		"/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
	}
	if !slices.Equal(c.Bootstrap, wantBootstrap) {
		t.Errorf("Bootstrap = %q, want Kubo's %q", c.Bootstrap, wantBootstrap)
	}
	if c.Routing.Type != "auto" || !slices.Equal(c.Routing.DelegatedRouters, []string{"https://cid.contact"}) {
		t.Errorf("Routing = %+v, want auto with https://cid.contact", c.Routing)
	}

	for name, run := range map[string]func(string) (int, string){
		"Flag":        func(p string) (int, string) { return initWith(t, p, "", "--profile", "test") },
		"ShortFlag":   func(p string) (int, string) { return initWith(t, p, "", "-p", "test") },
		"Environment": func(p string) (int, string) { return initWith(t, p, "test") },
	} {
		t.Run(name, func(t *testing.T) {
			p := t.TempDir()
			if code, stderr := run(p); code != 0 {
				t.Fatalf("init: exit %d: %s", code, stderr)
			}
			if err := privateConfig(p, nil); err != nil {
				t.Error(err)
			}
			c, text := readWritten(t, p)
			if len(c.Addresses.Swarm) == 0 {
				t.Error("no listen addresses")
			}
			for _, public := range []string{"bootstrap.libp2p.io", "104.131.131.82", "cid.contact", "0.0.0.0", "/ip6/::/"} {
				if strings.Contains(text, public) {
					t.Errorf("config names %q:\n%s", public, text)
				}
			}
		})
	}

	t.Run("Unknown", func(t *testing.T) {
		for _, env := range []string{"", "test"} {
			p := t.TempDir()
			code, stderr := initWith(t, p, env, "--profile", "tset")
			if code == 0 || !strings.Contains(stderr, `"tset"`) {
				t.Errorf("init --profile tset: exit %d, stderr %q; want a failure naming the profile", code, stderr)
			}
			if _, err := os.Stat(filepath.Join(p, "config")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("config after the failure: %v, want none", err)
			}
		}
	})
}

// The host a daemon would build from the config bsfs init writes: on the
// public defaults, Kubo's connection manager and every kind of NAT
// traversal; on the test profile, none. The configs are only loaded; no
// host is built.
func TestHostConfigFromInit(t *testing.T) {
	load := func(profileEnv string) network.HostConfig {
		t.Helper()
		p := t.TempDir()
		if code, stderr := initWith(t, p, profileEnv); code != 0 {
			t.Fatalf("init: exit %d: %s", code, stderr)
		}
		r, err := repopkg.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return node.HostConfig(r.Config, nil, r.Config.Addresses.Swarm)
	}
	pub := load("")
	if !pub.NATPortMap || !pub.AutoNAT || !pub.HolePunching || !pub.RelayClient {
		t.Errorf("public defaults: %+v, want port mapping, AutoNAT, hole punching and the relay client on", pub)
	}
	if pub.ConnsLow != 32 || pub.ConnsHigh != 96 || pub.GracePeriod != 20*time.Second {
		t.Errorf("public defaults: connection manager %d/%d/%v, want 32/96/20s", pub.ConnsLow, pub.ConnsHigh, pub.GracePeriod)
	}
	priv := load(repopkg.ProfileTest)
	if priv.NATPortMap || priv.AutoNAT || priv.HolePunching || priv.RelayClient {
		t.Errorf("test profile: %+v, want no NAT traversal", priv)
	}
}
