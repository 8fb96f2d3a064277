// Package block defines a content-addressed block and the checks every block
// passes before bsfs stores or serves it: size limits, supported hash
// functions, and verification of the bytes against the CID.
package block

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	_ "github.com/multiformats/go-multihash/register/blake3" // registers blake3 with go-multihash
)

const (
	// MaxSize is the largest block bsfs accepts or serves, in bytes.
	MaxSize = 2 << 20
	// MaxCIDSize is the longest binary CID bsfs accepts, in bytes.
	MaxCIDSize = 168
	// MaxIdentityDigest is the longest identity-hash digest accepted: the
	// data of an identity CID lives in the CID itself, so it is bounded by
	// the CID's own limit.
	MaxIdentityDigest = MaxCIDSize
)

// Errors returned by the checks. Wrap-tested with errors.Is.
var (
	ErrTooLarge       = errors.New("block too large")
	ErrCIDTooLong     = errors.New("CID too long")
	ErrUnsupportedCID = errors.New("unsupported CID")
	ErrHashMismatch   = errors.New("block data does not match its CID")
	ErrNotFound       = errors.New("block not found")
)

// Block is a CID and the bytes it addresses. A Block built by New or
// Verified has been checked, and remembers it (Checked) so that the layers
// it passes through need not hash it again; its Data must not be changed.
// The zero Block is not valid.
type Block struct {
	CID  cid.Cid
	Data []byte

	checked bool
}

// Checked reports whether b was built by New or Verified: its size, CID
// and hash have been checked.
func (b Block) Checked() bool { return b.checked }

// supportedHashes are the multihash functions whose blocks bsfs verifies.
// A CID hashed with anything else cannot be checked and is refused.
var supportedHashes = map[uint64]bool{
	mh.SHA2_256:         true,
	mh.SHA2_512:         true,
	mh.BLAKE2B_MIN + 31: true, // blake2b-256
	mh.BLAKE3:           true,
	mh.IDENTITY:         true,
}

// CheckCID reports whether c is a CID bsfs can work with: defined, within
// MaxCIDSize, and hashed with a supported function whose digest length is
// the function's own (identity digests are bounded by MaxIdentityDigest).
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined", ErrUnsupportedCID)
	}
	if n := c.ByteLen(); n > MaxCIDSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrCIDTooLong, n, MaxCIDSize)
	}
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedCID, err)
	}
	if !supportedHashes[dec.Code] {
		return fmt.Errorf("%w: hash function %s (0x%x)", ErrUnsupportedCID, mh.Codes[dec.Code], dec.Code)
	}
	switch dec.Code {
	case mh.IDENTITY:
		if dec.Length > MaxIdentityDigest {
			return fmt.Errorf("%w: identity digest of %d bytes", ErrUnsupportedCID, dec.Length)
		}
	case mh.BLAKE3:
		// blake3 is an extendable-output function: any length from 1 up is
		// a valid digest, but not none.
		if dec.Length == 0 {
			return fmt.Errorf("%w: empty blake3 digest", ErrUnsupportedCID)
		}
	default:
		if want, ok := mh.DefaultLengths[dec.Code]; ok && dec.Length != want {
			return fmt.Errorf("%w: %s digest of %d bytes, want %d", ErrUnsupportedCID, mh.Codes[dec.Code], dec.Length, want)
		}
	}
	return nil
}

// IsIdentity reports whether c carries its data inline (identity multihash).
func IsIdentity(c cid.Cid) bool {
	return c.Defined() && c.Prefix().MhType == mh.IDENTITY
}

// emptyDigests maps each supported hash function to its digest of zero
// bytes; blake3's is its longest, 128 bytes, of which a shorter blake3
// digest is a prefix. Computed once at init and never modified.
var emptyDigests = func() map[uint64]string {
	m := make(map[uint64]string)
	for code := range supportedHashes {
		length := -1
		switch code {
		case mh.IDENTITY:
			continue
		case mh.BLAKE3:
			length = 128
		}
		h, err := mh.Sum(nil, code, length)
		if err != nil {
			panic(fmt.Sprintf("block: hash of zero bytes with %s: %v", mh.Codes[code], err))
		}
		dec, err := mh.Decode(h)
		if err != nil {
			panic(fmt.Sprintf("block: decoding %s: %v", mh.Codes[code], err))
		}
		m[code] = string(dec.Digest)
	}
	return m
}()

// Inline returns the block c names when its bytes are known from c alone:
// an identity CID carries them, and a CID whose digest is the hash of zero
// bytes (with any supported function, under any codec) names the empty
// block. Such blocks need no store and no peer.
func Inline(c cid.Cid) (Block, bool) {
	if !c.Defined() {
		return Block{}, false
	}
	p := c.Prefix()
	k := c.KeyString() // ends with the digest
	if p.MhType == mh.IDENTITY {
		if p.MhLength < 0 || p.MhLength > len(k) {
			return Block{}, false
		}
		return Block{CID: c, Data: []byte(k[len(k)-p.MhLength:])}, true
	}
	d, ok := emptyDigests[p.MhType]
	if !ok || p.MhLength <= 0 || p.MhLength > len(d) || (p.MhType != mh.BLAKE3 && p.MhLength != len(d)) {
		return Block{}, false
	}
	if k[len(k)-p.MhLength:] != d[:p.MhLength] {
		return Block{}, false
	}
	return Block{CID: c, Data: []byte{}}, true
}

// Verified checks data against c and returns the block, whose Data is not
// nil even when empty. It fails with ErrTooLarge, ErrCIDTooLong,
// ErrUnsupportedCID or ErrHashMismatch.
func Verified(c cid.Cid, data []byte) (Block, error) {
	if len(data) > MaxSize {
		return Block{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxSize)
	}
	if err := CheckCID(c); err != nil {
		return Block{}, err
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return Block{}, fmt.Errorf("%w: %v", ErrUnsupportedCID, err)
	}
	if !bytes.Equal(sum.Hash(), c.Hash()) {
		return Block{}, fmt.Errorf("%w: %s", ErrHashMismatch, c)
	}
	return Block{CID: c, Data: nonNil(data), checked: true}, nil
}

// New hashes data with prefix and returns the block under the resulting
// CID, whose Data is not nil even when empty.
func New(prefix cid.Prefix, data []byte) (Block, error) {
	if len(data) > MaxSize {
		return Block{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxSize)
	}
	c, err := prefix.Sum(data)
	if err != nil {
		return Block{}, fmt.Errorf("%w: %v", ErrUnsupportedCID, err)
	}
	if err := CheckCID(c); err != nil {
		return Block{}, err
	}
	return Block{CID: c, Data: nonNil(data), checked: true}, nil
}

// nonNil returns data, or an empty slice for nil: an empty block's data is
// present, not absent.
func nonNil(data []byte) []byte {
	if data == nil {
		return []byte{}
	}
	return data
}

// Key returns the string form of c's bytes, for use as a map key. Two CIDs
// of different versions or codecs over the same multihash get distinct keys.
func Key(c cid.Cid) string { return c.KeyString() }
