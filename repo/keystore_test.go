package repo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestKeystore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	r := closeT(t, mustOpen(t, path))
	self, err := peer.Decode(r.Config.Identity.PeerID)
	if err != nil {
		t.Fatal(err)
	}
	id, err := GenKey(path, "site")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenKey(path, "site"); !errors.Is(err, ErrKeyExists) {
		t.Errorf("second GenKey(site) = %v, want ErrKeyExists", err)
	}
	for _, bad := range []string{"self", "", ".hidden", "a/b", "../x", string(make([]byte, 65))} {
		if _, err := GenKey(path, bad); err == nil {
			t.Errorf("GenKey(%q) succeeded", bad)
		}
	}
	fi, err := os.Stat(filepath.Join(path, keystoreDir, "site"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	keys, err := ListKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != (Key{SelfKey, self}) || keys[1] != (Key{"site", id}) {
		t.Errorf("ListKeys = %v", keys)
	}
	sk, err := LoadKey(path, "site")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := peer.IDFromPrivateKey(sk); got != id {
		t.Errorf("LoadKey(site) is the key of %s, want %s", got, id)
	}
	if _, err := LoadKey(path, "nope"); !errors.Is(err, ErrNoKey) {
		t.Errorf("LoadKey(nope) = %v, want ErrNoKey", err)
	}
}
