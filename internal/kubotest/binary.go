// Package kubotest runs real Kubo peers for tests that must interoperate
// with the reference IPFS implementation.
//
// Kubo is never imported as a library: it runs as a separate `ipfs daemon`
// process with a fresh repository in a temporary directory, configured so
// that it listens on 127.0.0.1 only and never reaches outside the machine
// (no bootstrap peers, no MDNS, no DHT or delegated routing, no AutoNAT,
// relays, hole punching, UPnP or telemetry). Bitswap stays on, so a peer
// connected with [Node.SwarmConnect] exchanges blocks with it.
// [StartWith] can turn Kubo's DHT on; its network is then the peers the
// test connects it to, and the bootstrap peers it is given, which must be
// on 127.0.0.1 too. [StartDHTNetwork] starts a network of DHT servers
// bootstrapped to the first.
//
// Tests find the binary with [Binary]: `$BSFS_KUBO`, else the path where
// `.ci/install-kubo` caches it, else `ipfs` on PATH if it is the pinned
// version. When none is found the test is skipped, or fails when
// `BSFS_REQUIRE_KUBO=1` (as in CI).
package kubotest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	// EnvRequire names the environment variable that, set to "1", makes a
	// missing Kubo fail the test instead of skipping it.
	EnvRequire = "BSFS_REQUIRE_KUBO"
	// EnvBinary names the environment variable holding the path of the
	// ipfs binary to run.
	EnvBinary = "BSFS_KUBO"
	// Version is the pinned Kubo release the tests run against.
	Version = "0.42.0"
)

// versionTimeout bounds `ipfs version`, which should answer at once.
const versionTimeout = 10 * time.Second

// Binary returns the path of the Kubo binary to run. It looks at
// $BSFS_KUBO, then at the cache path that .ci/install-kubo fills, then at
// `ipfs` on PATH when that reports version 0.42.0. When none is usable it
// skips the test, or fails it when BSFS_REQUIRE_KUBO=1.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := find()
	if err != nil {
		msg := fmt.Sprintf("kubotest: no Kubo %s binary: %v; run .ci/install-kubo (tests find the binary it caches) or set %s to an ipfs binary", Version, err, EnvBinary)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s (%s=1)", msg, EnvRequire)
		}
		t.Skip(msg)
	}
	return bin
}

// find implements Binary's search without a testing.TB.
func find() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := binaryVersion(p); err != nil {
			return "", fmt.Errorf("%s=%q is not a working ipfs binary: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	var tried []string
	if p, err := cachePath(); err == nil {
		if _, err := os.Stat(p); err == nil {
			if _, err := binaryVersion(p); err != nil {
				return "", fmt.Errorf("cached %s does not run: %w", p, err)
			}
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("ipfs"); err == nil {
		v, err := binaryVersion(p)
		if err == nil && v == Version {
			return p, nil
		}
		tried = append(tried, fmt.Sprintf("%s (version %q)", p, v))
	} else {
		tried = append(tried, "ipfs on PATH")
	}
	return "", fmt.Errorf("%s unset, tried %s", EnvBinary, strings.Join(tried, ", "))
}

// cachePath mirrors .ci/install-kubo:
// ${BSFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bsfs}/kubo-v0.42.0/ipfs.
func cachePath() (string, error) {
	dir := os.Getenv("BSFS_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(base, "bsfs")
	}
	return filepath.Join(dir, "kubo-v"+Version, "ipfs"), nil
}

// binaryVersion runs `bin version --number` and returns its output.
func binaryVersion(bin string) (string, error) {
	// An IPFS_PATH that does not exist keeps any real repository out of it.
	dir, err := os.MkdirTemp("", "kubotest-version-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version", "--number")
	cmd.Env = append(os.Environ(), "IPFS_PATH="+filepath.Join(dir, "none"), "IPFS_TELEMETRY=off")
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
