package blockstore

import (
	"encoding/base32"
	"strings"

	mh "github.com/multiformats/go-multihash"
)

// fileExt is the suffix flatfs gives every block file.
const fileExt = ".data"

// keyEncoding is RFC 4648 base32, upper case, without padding: the
// encoding Kubo uses for the names of its flatfs block files.
var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key returns the flatfs key (without the leading "/") under which a block
// whose multihash is h is stored. Kubo stores blocks under the same key, so
// every CID over h, whatever its version or codec, names one stored block.
func Key(h mh.Multihash) string {
	return keyEncoding.EncodeToString(h)
}

// multihashFromFile returns the multihash that a block file's name encodes,
// or false when the name is not one a block is stored under.
func multihashFromFile(name string) (mh.Multihash, bool) {
	key, ok := strings.CutSuffix(name, fileExt)
	if !ok || key == "" {
		return nil, false
	}
	raw, err := keyEncoding.DecodeString(key)
	if err != nil {
		return nil, false
	}
	h, err := mh.Cast(raw)
	if err != nil || Key(h) != key {
		return nil, false
	}
	return h, true
}
