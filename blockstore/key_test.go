package blockstore

import (
	"bytes"
	"fmt"
	"testing"

	mh "github.com/multiformats/go-multihash"
)

func TestKeyRoundTrip(t *testing.T) {
	for i := range 3 {
		want, err := mh.Sum([]byte(fmt.Sprintf("block %d;", i)), mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		h, ok := multihashFromFile(Key(want) + ".data")
		if !ok || !bytes.Equal(h, want) {
			t.Fatalf("multihashFromFile(Key(%s)) = %v, %v", want, h, ok)
		}
	}
	for _, name := range []string{"", ".data", "SHARDING", "_README", "diskUsage.cache", "temp-123",
		"cIQA4T3TD3BP3C2M3GXCGRCRTCCHV7XSGAZPZJOAOHLPOI6IQR3H6YQ.data", "CIQAAAAB.data", "AB.data"} {
		if h, ok := multihashFromFile(name); ok {
			t.Errorf("multihashFromFile(%q) = %v; want not a key", name, h)
		}
	}
}
