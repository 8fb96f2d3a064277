package fs

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// FuzzParseName feeds names to parseCID, which the mount's Lookup turns a
// name into a CID with: it never panics; a name it accepts is one the
// kernel can send (at most 255 bytes, no '/' or NUL) and names a CID bsfs
// can fetch, whose string form parses back to it.
func FuzzParseName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		c, ok := parseCID(name)
		if !ok {
			if c.Defined() {
				t.Fatalf("%q refused, yet parsed to %s", name, c)
			}
			return
		}
		if len(name) > maxNameLen || strings.ContainsAny(name, "/\x00") {
			t.Fatalf("accepted %q (%d bytes)", name, len(name))
		}
		if err := block.CheckCID(c); err != nil {
			t.Fatalf("%q accepted as %s: %v", name, c, err)
		}
		back, err := cid.Decode(c.String())
		if err != nil || !back.Equals(c) {
			t.Fatalf("%q accepted as %s, which parses back to %s (%v)", name, c, back, err)
		}
	})
}
