package repo

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/internal/atomicfile"
)

// SelfKey names the node's own key, the one in the config, as Kubo does.
const SelfKey = "self"

// keystoreDir holds the keys made with GenKey, one file each, named as the
// key, holding the libp2p-marshalled private key, readable by its owner
// only.
const keystoreDir = "keystore"

// keyName is what a key's name may be: it is a file name in keystoreDir.
var keyName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

// ErrKeyExists and ErrNoKey are returned by GenKey for a name in use and
// by LoadKey for a name with no key.
var (
	ErrKeyExists = errors.New("key already exists")
	ErrNoKey     = errors.New("no such key")
)

// Key is a key's name and the peer ID, its IPNS name, it signs for.
type Key struct {
	Name string
	ID   peer.ID
}

// CheckKeyName reports why name cannot name a key, or nil.
func CheckKeyName(name string) error {
	if name == SelfKey || !keyName.MatchString(name) {
		return fmt.Errorf("invalid key name %q: want 1 to 64 letters, digits, '.', '_' or '-', not starting with '.', and not %q", name, SelfKey)
	}
	return nil
}

// GenKey makes a new Ed25519 key called name in the keystore of the
// repository at path and returns its ID. The repository need not be open:
// a running daemon sees the key on its next use of it.
func GenKey(path, name string) (peer.ID, error) {
	if err := CheckKeyName(name); err != nil {
		return "", err
	}
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return "", err
	}
	raw, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(path, keystoreDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("keystore: %w", err)
	}
	// Linked into place whole, which fails rather than replace a key of
	// the same name.
	if err := atomicfile.WriteNew(filepath.Join(dir, name), raw); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("key %q: %w", name, ErrKeyExists)
		}
		return "", fmt.Errorf("keystore: %w", err)
	}
	return id, nil
}

// LoadKey returns the private key called name in the repository at path:
// "self" (or "") is the node's own, from the config.
func LoadKey(path, name string) (crypto.PrivKey, error) {
	if name == "" || name == SelfKey {
		c, err := ReadConfig(path)
		if err != nil {
			return nil, err
		}
		return c.Identity.privKey()
	}
	if err := CheckKeyName(name); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(path, keystoreDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key %q: %w (make it with 'bsfs key gen %s')", name, ErrNoKey, name)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	sk, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	return sk, nil
}

// ListKeys returns the keys of the repository at path: "self" first, then
// the keystore's by name.
func ListKeys(path string) ([]Key, error) {
	var out []Key
	entries, err := os.ReadDir(filepath.Join(path, keystoreDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	names := []string{SelfKey}
	for _, e := range entries {
		if e.Type().IsRegular() && CheckKeyName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names[1:])
	for _, name := range names {
		sk, err := LoadKey(path, name)
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromPrivateKey(sk)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", name, err)
		}
		out = append(out, Key{Name: name, ID: id})
	}
	return out, nil
}
