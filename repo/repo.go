// Package repo manages the repository directory a bsfs process owns: its
// libp2p identity and configuration (the JSON file "config"), its blocks
// (a Kubo-compatible flatfs store in "blocks"), and the lock ("repo.lock")
// that keeps a second process out while one has it open.
package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/bsfs/bsfs/blockstore"
)

// EnvPath is the environment variable naming the repository directory.
const EnvPath = "BSFS_PATH"

// Names of the files inside a repository.
const (
	configFile = "config"
	lockFile   = "repo.lock"
	blocksDir  = "blocks"
	apiSocket  = "api.sock"
)

// ErrExists is returned by Init when the repository already has a config.
var ErrExists = errors.New("repository already initialised")

// DefaultPath returns the repository directory: $BSFS_PATH if set, else
// ~/.bsfs.
func DefaultPath() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("repository path: %w (set %s)", err, EnvPath)
	}
	return filepath.Join(home, ".bsfs"), nil
}

// Repo is an open, locked repository.
type Repo struct {
	// Path is the repository directory, absolute.
	Path string
	// Config is the configuration as loaded, defaults filled in.
	Config Config

	lock *os.File
	bs   *blockstore.Blockstore
}

// Init creates a repository at path: the directory (mode 0700), a new
// Ed25519 identity, the config file with the defaults changed by the
// profiles named (then by those of $BSFS_INIT_PROFILE), and the blocks
// store. It fails with ErrExists if path already holds a config. The
// repository is returned open and locked.
func Init(path string, profiles ...string) (*Repo, error) {
	return open(path, profiles, true, lock)
}

// Open opens and locks the repository at path, creating it with a new
// identity and the default config if it does not exist yet. If another
// process (or another Repo in this process) has it open, Open fails with an
// error wrapping ErrLocked.
func Open(path string) (*Repo, error) { return open(path, nil, false, lock) }

// OpenWait is Open, except that while another process holds the repository
// it waits for the lock until ctx ends, then fails with an error wrapping
// ErrLocked. Each time the lock is found held, held (if not nil) is given
// that error and may end the wait at once by returning an error, for a
// holder that will not let go soon.
func OpenWait(ctx context.Context, path string, held func(locked error) error) (*Repo, error) {
	return open(path, nil, false, func(lockPath, repoPath string) (*os.File, error) {
		return lockWait(ctx, lockPath, repoPath, held)
	})
}

// open opens, or with mustCreate creates, the repository at path, taking
// its lock with lockFn. A repository created gets the profiles named.
func open(path string, profiles []string, mustCreate bool, lockFn func(lockPath, repoPath string) (*os.File, error)) (_ *Repo, err error) {
	if path == "" {
		return nil, errors.New("repository path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("repository: %w", err)
	}
	// Everything below happens under the lock, so two processes racing to
	// create the same repository cannot both write a config.
	lk, err := lockFn(filepath.Join(abs, lockFile), abs)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lk.Close()
		}
	}()

	cfgPath := filepath.Join(abs, configFile)
	cfg, err := readConfig(cfgPath)
	switch {
	case err == nil && mustCreate:
		return nil, fmt.Errorf("repository %s: %w", abs, ErrExists)
	case errors.Is(err, fs.ErrNotExist):
		if cfg, err = create(cfgPath, profiles); err != nil {
			return nil, fmt.Errorf("repository %s: creating config: %w", abs, err)
		}
	case err != nil:
		return nil, fmt.Errorf("repository %s: %w", abs, err)
	}

	// Blocks are written without fsync, as Kubo does: flatfs renames a
	// complete temporary file into place, so a crash leaves no torn block,
	// and every read checks the hash, so a block a power loss damaged is
	// detected and fetched again. With fsync a 256 KiB write costs three
	// times as much here, which would cap fetches near 30 MB/s.
	bs, err := blockstore.Open(filepath.Join(abs, blocksDir), blockstore.Config{NoSync: true, ShardsAhead: true})
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", abs, err)
	}
	return &Repo{Path: abs, Config: cfg, lock: lk, bs: bs}, nil
}

// create writes a new config with a fresh identity and the defaults, then
// applies the profiles named and those of $BSFS_INIT_PROFILE.
func create(path string, profiles []string) (Config, error) {
	id, err := newIdentity()
	if err != nil {
		return Config{}, err
	}
	cfg := defaultConfig(id)
	for _, p := range initProfiles(profiles) {
		if err := ApplyProfile(&cfg, p); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.fillDefaults(); err != nil {
		return Config{}, err
	}
	if err := writeConfig(path, cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// PrivKey returns the node's private key, decoded from the config.
func (r *Repo) PrivKey() (crypto.PrivKey, error) { return r.Config.Identity.privKey() }

// Blockstore returns the repository's block store. It is closed by Close.
func (r *Repo) Blockstore() *blockstore.Blockstore { return r.bs }

// APISocketPath returns the path of the API socket of the repository at
// path, for clients that look for a daemon before opening the repository.
func APISocketPath(path string) string { return filepath.Join(path, apiSocket) }

// APISocket returns the path of the Unix socket on which a running daemon
// serves its local API.
func (r *Repo) APISocket() string { return APISocketPath(r.Path) }

// SetConfig checks cfg, fills in its defaults, writes it atomically to the
// config file and makes it r.Config. The running process does not apply
// it; it takes effect on the next Open.
func (r *Repo) SetConfig(cfg Config) error {
	if err := cfg.fillDefaults(); err != nil {
		return err
	}
	if err := writeConfig(filepath.Join(r.Path, configFile), cfg); err != nil {
		return fmt.Errorf("repository %s: writing config: %w", r.Path, err)
	}
	r.Config = cfg
	return nil
}

// Close closes the block store and releases the lock. Calling it again
// does nothing.
func (r *Repo) Close() error {
	if r.lock == nil {
		return nil
	}
	err := r.bs.Close()
	if cerr := r.lock.Close(); err == nil {
		err = cerr
	}
	r.lock = nil
	return err
}
