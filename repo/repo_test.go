package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// closeT closes r when the test ends.
func closeT(t *testing.T, r *Repo) *Repo {
	t.Helper()
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func TestInitOpenRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	r, err := Init(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != path {
		t.Errorf("Path = %q; want %q", r.Path, path)
	}
	mode := func(name string) os.FileMode {
		st, err := os.Stat(filepath.Join(path, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if m := mode("."); m != 0o700 {
		t.Errorf("repository mode %v; want 0700", m)
	}
	if m := mode("config"); m != 0o600 {
		t.Errorf("config mode %v; want 0600", m)
	}
	if _, err := os.Stat(filepath.Join(path, "blocks", "SHARDING")); err != nil {
		t.Errorf("blocks store not created: %v", err)
	}
	if got, want := r.APISocket(), filepath.Join(path, "api.sock"); got != want {
		t.Errorf("APISocket = %q; want %q", got, want)
	}

	sk, err := r.PrivKey()
	if err != nil {
		t.Fatal(err)
	}
	if sk.Type() != crypto.Ed25519 {
		t.Errorf("key type %v; want Ed25519", sk.Type())
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil || id.String() != r.Config.Identity.PeerID {
		t.Fatalf("PeerID %s does not match the key's ID %s (%v)", r.Config.Identity.PeerID, id, err)
	}

	blk, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}, []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Blockstore().Put(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Blockstore().Has(context.Background(), blk.CID); err == nil {
		t.Error("block store still open after Close")
	}

	// Init refuses an initialised repository and leaves it alone.
	if r2, err := Init(path); !errors.Is(err, ErrExists) {
		if err == nil {
			r2.Close()
		}
		t.Fatalf("second Init = %v; want ErrExists", err)
	}

	r = closeT(t, mustOpen(t, path))
	if r.Config.Identity != (IdentityConfig{PeerID: id.String(), PrivKey: r.Config.Identity.PrivKey}) {
		t.Fatalf("identity changed on reopen: %+v", r.Config.Identity)
	}
	sk2, err := r.PrivKey()
	if err != nil || !sk2.Equals(sk) {
		t.Fatalf("private key changed on reopen (%v)", err)
	}
	if has, err := r.Blockstore().Has(context.Background(), blk.CID); err != nil || !has {
		t.Fatalf("block lost across reopen: %v, %v", has, err)
	}
}

func mustOpen(t *testing.T, path string) *Repo {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return r
}

// Opening a missing repository creates it with the public defaults. No
// node is started on it.
func TestOpenCreatesMissing(t *testing.T) {
	t.Setenv(EnvInitProfile, "")
	path := filepath.Join(t.TempDir(), "a", "b")
	r := closeT(t, mustOpen(t, path))
	if r.Config.Identity.PeerID == "" {
		t.Fatal("no identity created")
	}
	if !slices.Equal(r.Config.Addresses.Swarm, DefaultSwarmAddrs()) {
		t.Errorf("Swarm = %v; want defaults", r.Config.Addresses.Swarm)
	}
	if !slices.Equal(r.Config.Bootstrap, DefaultBootstrap()) {
		t.Errorf("Bootstrap = %v; want defaults", r.Config.Bootstrap)
	}
	if r.Config.Routing.Type != RoutingAuto || !slices.Equal(r.Config.Routing.DelegatedRouters, DefaultDelegatedRouters()) {
		t.Errorf("Routing = %+v; want auto with the default routers", r.Config.Routing)
	}
	// The file written holds the defaults, so a user sees what to edit.
	var onDisk Config
	data, err := os.ReadFile(filepath.Join(path, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &onDisk); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onDisk.Addresses.Swarm, DefaultSwarmAddrs()) || !slices.Equal(onDisk.Bootstrap, DefaultBootstrap()) ||
		!slices.Equal(onDisk.Routing.DelegatedRouters, DefaultDelegatedRouters()) || onDisk.Identity != r.Config.Identity {
		t.Errorf("config on disk %+v differs from the loaded one %+v", onDisk, r.Config)
	}
}

// writeFile writes a config file by hand, as a user would.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// identityJSON returns a fresh identity as the JSON of an Identity object.
func identityJSON(t *testing.T) (IdentityConfig, string) {
	t.Helper()
	id, err := newIdentity()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	return id, string(data)
}

func TestDefaultsFilledIn(t *testing.T) {
	id, idJSON := identityJSON(t)
	t.Run("OnlyIdentity", func(t *testing.T) {
		path := t.TempDir()
		text := `{"Identity": ` + idJSON + `}`
		writeFile(t, filepath.Join(path, "config"), text)
		r := closeT(t, mustOpen(t, path))
		if r.Config.Identity != id {
			t.Errorf("Identity = %+v", r.Config.Identity)
		}
		// Networking left out keeps the node private.
		if !slices.Equal(r.Config.Addresses.Swarm, loopbackSwarmAddrs()) {
			t.Errorf("Swarm = %v; want loopback", r.Config.Addresses.Swarm)
		}
		if r.Config.Bootstrap == nil || len(r.Config.Bootstrap) != 0 {
			t.Errorf("Bootstrap = %#v; want empty", r.Config.Bootstrap)
		}
		if r.Config.Routing.DelegatedRouters == nil || len(r.Config.Routing.DelegatedRouters) != 0 {
			t.Errorf("Routing.DelegatedRouters = %#v; want empty", r.Config.Routing.DelegatedRouters)
		}
		if r.Config.Routing.Type != RoutingDHT {
			t.Errorf("Routing.Type = %q; want %q", r.Config.Routing.Type, RoutingDHT)
		}
		if r.Config.Bitswap.Protocols == nil || len(r.Config.Bitswap.Protocols) != 0 {
			t.Errorf("Bitswap.Protocols = %#v; want empty (all)", r.Config.Bitswap.Protocols)
		}
		// Loading never rewrites the user's file.
		if data, _ := os.ReadFile(filepath.Join(path, "config")); string(data) != text {
			t.Errorf("config rewritten on load: %s", data)
		}
	})
	t.Run("Explicit", func(t *testing.T) {
		path := t.TempDir()
		boot := "/ip4/127.0.0.1/tcp/4001/p2p/" + id.PeerID
		writeFile(t, filepath.Join(path, "config"), `{
			"Identity": {"PrivKey": "`+id.PrivKey+`"},
			"Addresses": {"Swarm": []},
			"Bootstrap": ["`+boot+`"],
			"Bitswap": {"Protocols": ["/ipfs/bitswap/1.2.0"]}
		}`)
		r := closeT(t, mustOpen(t, path))
		if r.Config.Identity != id {
			t.Errorf("PeerID not derived from PrivKey: %+v", r.Config.Identity)
		}
		if r.Config.Addresses.Swarm == nil || len(r.Config.Addresses.Swarm) != 0 {
			t.Errorf("explicit empty Swarm replaced: %#v", r.Config.Addresses.Swarm)
		}
		if !slices.Equal(r.Config.Bootstrap, []string{boot}) {
			t.Errorf("Bootstrap = %v", r.Config.Bootstrap)
		}
		if !slices.Equal(r.Config.Bitswap.Protocols, []string{"/ipfs/bitswap/1.2.0"}) {
			t.Errorf("Protocols = %v", r.Config.Bitswap.Protocols)
		}
	})
}

func TestBadConfigRefused(t *testing.T) {
	id, idJSON := identityJSON(t)
	other, _ := identityJSON(t)
	cases := map[string]string{
		"NotJSON":        `{"Identity": `,
		"Trailing":       `{"Identity": ` + idJSON + `} {}`,
		"UnknownField":   `{"Identity": ` + idJSON + `, "Adresses": {}}`,
		"NoIdentity":     `{}`,
		"BadKey":         `{"Identity": {"PrivKey": "bm90IGEga2V5"}}`,
		"NotBase64":      `{"Identity": {"PrivKey": "%%%"}}`,
		"PeerIDMismatch": `{"Identity": {"PeerID": "` + other.PeerID + `", "PrivKey": "` + id.PrivKey + `"}}`,
		"BadSwarm":       `{"Identity": ` + idJSON + `, "Addresses": {"Swarm": ["/ip4/127.0.0.1/tcpp/1"]}}`,
		"BadBootstrap":   `{"Identity": ` + idJSON + `, "Bootstrap": ["/ip4/127.0.0.1/tcp/4001"]}`,
		"BadProtocol":    `{"Identity": ` + idJSON + `, "Bitswap": {"Protocols": ["/ipfs/bitswap/9.9.9"]}}`,
		"BadRouting":     `{"Identity": ` + idJSON + `, "Routing": {"Type": "dth"}}`,
		"WaterMarks":     `{"Identity": ` + idJSON + `, "Swarm": {"ConnMgr": {"LowWater": 50, "HighWater": 40}}}`,
		"GracePeriod":    `{"Identity": ` + idJSON + `, "Swarm": {"ConnMgr": {"GracePeriod": "20"}}}`,
		"AutoNATMode":    `{"Identity": ` + idJSON + `, "AutoNAT": {"ServiceMode": "on"}}`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			path := t.TempDir()
			writeFile(t, filepath.Join(path, "config"), text)
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatal("Open accepted the config")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Open = %v; want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the repository: %v", err)
			}
			// The failed Open released the lock and kept the file.
			if data, _ := os.ReadFile(filepath.Join(path, "config")); string(data) != text {
				t.Errorf("bad config was rewritten: %s", data)
			}
			writeFile(t, filepath.Join(path, "config"), `{"Identity": `+idJSON+`}`)
			closeT(t, mustOpen(t, path))
		})
	}
}

func TestSetConfig(t *testing.T) {
	path := t.TempDir()
	r := mustOpen(t, path)
	cfg := r.Config
	cfg.Addresses.Swarm = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Bitswap.Protocols = []string{"/ipfs/bitswap/1.1.0"}
	if err := r.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Bitswap.Protocols = []string{"nope"}
	if err := r.SetConfig(bad); !errors.Is(err, ErrConfig) {
		t.Fatalf("SetConfig(bad) = %v; want ErrConfig", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	r = closeT(t, mustOpen(t, path))
	if !slices.Equal(r.Config.Addresses.Swarm, cfg.Addresses.Swarm) ||
		!slices.Equal(r.Config.Bitswap.Protocols, cfg.Bitswap.Protocols) {
		t.Fatalf("config after reopen: %+v; want %+v", r.Config, cfg)
	}
}

func TestLockedInProcess(t *testing.T) {
	path := t.TempDir()
	r := mustOpen(t, path)
	for _, open := range []func(string) (*Repo, error){Open, func(p string) (*Repo, error) { return Init(p) }} {
		r2, err := open(path)
		if !errors.Is(err, ErrLocked) {
			if err == nil {
				r2.Close()
			}
			t.Fatalf("second open = %v; want ErrLocked", err)
		}
		want := "repository " + path + " is in use by another bsfs process"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	closeT(t, mustOpen(t, path))
}

func TestDefaultPath(t *testing.T) {
	t.Setenv(EnvPath, "/some/where")
	if p, err := DefaultPath(); err != nil || p != "/some/where" {
		t.Errorf("DefaultPath with %s set = %q, %v", EnvPath, p, err)
	}
	t.Setenv(EnvPath, "")
	t.Setenv("HOME", "/home/someone")
	if p, err := DefaultPath(); err != nil || p != "/home/someone/.bsfs" {
		t.Errorf("DefaultPath = %q, %v; want /home/someone/.bsfs", p, err)
	}
}

// TestRoutingConfig: Routing.Type takes "auto", "dht", "delegated" and
// "none" ("dht" when absent); Routing.DelegatedRouters takes absolute http
// and https URLs (empty when absent). A bad value is refused with an error
// naming its key.
func TestRoutingConfig(t *testing.T) {
	_, idJSON := identityJSON(t)
	config := func(routing string) string { return `{"Identity": ` + idJSON + `, "Routing": ` + routing + `}` }
	t.Run("Absent", func(t *testing.T) {
		path := t.TempDir()
		writeFile(t, filepath.Join(path, "config"), `{"Identity": `+idJSON+`}`)
		r := closeT(t, mustOpen(t, path))
		if r.Config.Routing.Type != RoutingDHT {
			t.Errorf("Routing.Type = %q; want %q", r.Config.Routing.Type, RoutingDHT)
		}
		if r.Config.Routing.DelegatedRouters == nil || len(r.Config.Routing.DelegatedRouters) != 0 {
			t.Errorf("Routing.DelegatedRouters = %#v; want empty", r.Config.Routing.DelegatedRouters)
		}
	})
	routers := []string{"http://127.0.0.1:8080", "https://127.0.0.1:8443/routing/v1"}
	for _, typ := range RoutingTypes() {
		t.Run("Type="+typ, func(t *testing.T) {
			path := t.TempDir()
			writeFile(t, filepath.Join(path, "config"), config(`{"Type": "`+typ+`", "DelegatedRouters": ["`+strings.Join(routers, `", "`)+`"]}`))
			r := closeT(t, mustOpen(t, path))
			if r.Config.Routing.Type != typ || !slices.Equal(r.Config.Routing.DelegatedRouters, routers) {
				t.Errorf("Routing = %+v", r.Config.Routing)
			}
		})
	}
	bad := map[string]struct{ routing, key string }{
		"UnknownType":        {`{"Type": "dhtclient"}`, "Routing.Type"},
		"RouterNoScheme":     {`{"Type": "auto", "DelegatedRouters": ["127.0.0.1:8080"]}`, "Routing.DelegatedRouters"},
		"RouterFTP":          {`{"Type": "auto", "DelegatedRouters": ["ftp://127.0.0.1/"]}`, "Routing.DelegatedRouters"},
		"RouterRelative":     {`{"DelegatedRouters": ["/routing/v1"]}`, "Routing.DelegatedRouters"},
		"RouterOtherPath":    {`{"DelegatedRouters": ["http://127.0.0.1:8080/api/v0"]}`, "Routing.DelegatedRouters"},
		"RouterQuery":        {`{"DelegatedRouters": ["http://127.0.0.1:8080?x=1"]}`, "Routing.DelegatedRouters"},
		"RouterNotURL":       {`{"DelegatedRouters": ["http://[::1"]}`, "Routing.DelegatedRouters"},
		"DelegatedNoRouters": {`{"Type": "delegated"}`, "Routing.DelegatedRouters"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			path := t.TempDir()
			writeFile(t, filepath.Join(path, "config"), config(tc.routing))
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatalf("Open accepted Routing %s", tc.routing)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("Open = %v; want ErrConfig naming %s", err, tc.key)
			}
		})
	}
}

// TestProvideConfig: a fresh config has Provide.Strategy "all", as Kubo;
// an absent key means "roots"; "all", "pinned" and "roots" are taken as
// they are, and anything else is refused with an error naming the key.
func TestProvideConfig(t *testing.T) {
	t.Run("Fresh", func(t *testing.T) {
		t.Setenv(EnvInitProfile, "")
		r := closeT(t, mustOpen(t, filepath.Join(t.TempDir(), "fresh")))
		if r.Config.Provide.Strategy != ProvideAll {
			t.Errorf("fresh Provide.Strategy = %q; want %q", r.Config.Provide.Strategy, ProvideAll)
		}
	})
	_, idJSON := identityJSON(t)
	t.Run("Absent", func(t *testing.T) {
		path := t.TempDir()
		writeFile(t, filepath.Join(path, "config"), `{"Identity": `+idJSON+`}`)
		r := closeT(t, mustOpen(t, path))
		if r.Config.Provide.Strategy != ProvideRoots {
			t.Errorf("Provide.Strategy = %q; want %q", r.Config.Provide.Strategy, ProvideRoots)
		}
	})
	for _, s := range ProvideStrategies() {
		t.Run("Strategy="+s, func(t *testing.T) {
			path := t.TempDir()
			writeFile(t, filepath.Join(path, "config"), `{"Identity": `+idJSON+`, "Provide": {"Strategy": "`+s+`"}}`)
			r := closeT(t, mustOpen(t, path))
			if r.Config.Provide.Strategy != s {
				t.Errorf("Provide.Strategy = %q; want %q", r.Config.Provide.Strategy, s)
			}
		})
	}
	for _, s := range []string{"pinned+mfs", "All", "none"} {
		t.Run("Bad="+s, func(t *testing.T) {
			path := t.TempDir()
			writeFile(t, filepath.Join(path, "config"), `{"Identity": `+idJSON+`, "Provide": {"Strategy": "`+s+`"}}`)
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatalf("Open accepted Provide.Strategy %q", s)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Provide.Strategy") {
				t.Fatalf("Open = %v; want ErrConfig naming Provide.Strategy", err)
			}
		})
	}
}
