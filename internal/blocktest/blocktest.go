// Package blocktest makes the data, hashes, CIDs and blocks that tests
// store and exchange.
package blocktest

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// RawV1 is the prefix of CIDv1 raw blocks hashed with sha2-256.
func RawV1() cid.Prefix {
	return cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}
}

// RandomBytes returns n random bytes.
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// SeededBytes returns n pseudo-random bytes, the same for the same seed.
func SeededBytes(n int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	mrand.NewChaCha8(key).Read(b)
	return b
}

// Hash returns the sha2-256 multihash of data.
func Hash(t testing.TB, data []byte) mh.Multihash {
	t.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// CID returns the CIDv1 raw sha2-256 CID of s's bytes.
func CID(t testing.TB, s string) cid.Cid {
	t.Helper()
	return cid.NewCidV1(cid.Raw, Hash(t, []byte(s)))
}

// NewBlock builds a valid block of data under prefix.
func NewBlock(t testing.TB, prefix cid.Prefix, data []byte) block.Block {
	t.Helper()
	b, err := block.New(prefix, data)
	if err != nil {
		t.Fatalf("block.New: %v", err)
	}
	return b
}
