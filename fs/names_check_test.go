package fs

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/internal/names"
)

// TestValidName checks which names DIR/ipns asks the resolver about:
// libp2p keys in each spelling, and DNS names; nothing else.
func TestValidName(t *testing.T) {
	_, ed, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, rsa, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var ids []peer.ID
	for _, k := range []crypto.PubKey{ed, rsa} {
		id, err := peer.IDFromPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if !strings.HasPrefix(ids[0].String(), "12D3KooW") || !strings.HasPrefix(ids[1].String(), "Qm") {
		t.Fatalf("peer IDs %s, %s: want an inlined ed25519 key and a hashed RSA key", ids[0], ids[1])
	}
	valid := []string{
		"docs.ipfs.tech", "en.wikipedia-on-ipfs.org", "a.b", "x1.example.test",
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61), // 253 bytes
	}
	for _, id := range ids {
		valid = append(valid, id.String())
		k := peer.ToCid(id)
		for _, base := range []multibase.Encoding{multibase.Base36, multibase.Base32, multibase.Base58BTC} {
			s, err := k.StringOfBase(base)
			if err != nil {
				t.Fatal(err)
			}
			valid = append(valid, s)
		}
	}
	garbage, err := mh.Encode([]byte("not a key"), mh.IDENTITY)
	if err != nil {
		t.Fatal(err)
	}
	short, err := mh.Encode(make([]byte, 20), mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	content := cid.NewCidV1(cid.DagProtobuf, []byte(ids[1]))
	invalid := []string{
		"", "/", "docs.ipfs.tech/", "a/b.c", "a\x00.b", "localhost", "com", "docs.ipfs.tech.",
		".docs.ipfs.tech", "a..b", "-a.b", "a-.b", "a.-b", "a_b.c", "a b.c", "é.example", "127.0.0.1",
		"a.123", strings.Repeat("a", 64) + ".b",
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 62), // 254 bytes
		"Qm", "12D3KooW", ids[0].String()[1:],
		content.String(), // a content CID of the key's hash
		cid.NewCidV1(cid.Libp2pKey, garbage).String(),          // an inlined key that is no key
		cid.NewCidV1(cid.Libp2pKey, short).String(),            // a sha2-256 of the wrong length
		peer.ToCid(ids[0]).String() + strings.Repeat("a", 200), // trailing bytes
	}
	for _, name := range valid {
		if !validName(name) {
			t.Errorf("%q (%d bytes) refused", name, len(name))
		}
	}
	for _, name := range invalid {
		if validName(name) {
			t.Errorf("%q (%d bytes) accepted", name, len(name))
		}
	}
	for _, name := range []string{rawName, ipfsName, ipnsName} {
		if _, ok := parseCID(name); ok {
			t.Errorf("%q parses as a CID: the directory hides it", name)
		}
	}
}

// TestLinkTarget checks the symlink a resolution reads as, and that paths
// that would climb out of the content or cannot be names are refused.
func TestLinkTarget(t *testing.T) {
	c := cid.NewCidV1(cid.Raw, mustSum(t, "content"))
	for _, tc := range []struct {
		rest []string
		want string // "" for refused
	}{
		{nil, "../" + c.String()},
		{[]string{"a", "b c", "d"}, "../" + c.String() + "/a/b c/d"},
		{[]string{"", "a", ""}, "../" + c.String() + "/a"},
		{[]string{".."}, ""},
		{[]string{"a", "..", ".."}, ""},
		{[]string{"."}, ""},
		{[]string{"a/../../x"}, ""},
		{[]string{"a\x00"}, ""},
		{[]string{strings.Repeat("a", 256)}, ""},
		{strings.Split(strings.Repeat(strings.Repeat("a", 255)+"/", 16), "/"), ""}, // over PATH_MAX
	} {
		got, err := linkTarget(names.Resolved{Root: c, Rest: tc.rest})
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("rest %q: %q, %v; want %q", tc.rest, got, err, tc.want)
		}
	}
	if _, err := linkTarget(names.Resolved{}); err == nil {
		t.Error("no CID: accepted")
	}
	md5, err := mh.Encode(make([]byte, 16), mh.MD5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := linkTarget(names.Resolved{Root: cid.NewCidV1(cid.Raw, md5)}); err == nil {
		t.Error("a CID hashed with md5: accepted")
	}
}

// TestNameCacheBound fills the cache of resolved names past its bound:
// it stays within it, dropping expired names before live ones.
func TestNameCacheBound(t *testing.T) {
	var c nameCache
	live := resolvedName{target: "../x", expires: time.Now().Add(time.Hour)}
	expired := resolvedName{target: "../y", expires: time.Now().Add(-time.Second)}
	for i := range maxCachedNames / 2 {
		c.put(fmt.Sprintf("live%d.test", i), live)
		c.put(fmt.Sprintf("old%d.test", i), expired)
	}
	c.put("new.test", live)
	if n := len(c.entries); n != maxCachedNames/2+1 {
		t.Errorf("%d names kept, want the %d live ones", n, maxCachedNames/2+1)
	}
	if _, ok := c.get("old0.test"); ok {
		t.Error("an expired name is served")
	}
	for i := range maxCachedNames {
		c.put(fmt.Sprintf("more%d.test", i), live)
	}
	if n := len(c.entries); n > maxCachedNames {
		t.Errorf("%d names kept, more than %d", n, maxCachedNames)
	}
	if _, ok := c.get(fmt.Sprintf("more%d.test", maxCachedNames-1)); !ok {
		t.Error("the name put last is not kept")
	}
}

func mustSum(t *testing.T, s string) mh.Multihash {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
