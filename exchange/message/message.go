// Package message is the Bitswap wire format: the Message a peer sends or
// receives, its protobuf encoding for each protocol version, and the
// length-prefixed framing used on a stream.
//
// The encoding is written by hand with protowire and numbers its fields as
// the Bitswap specification does. Encoding is per version: a message is
// always encoded so that the peer's protocol can carry it, dropping what
// that protocol cannot express (see Marshal). Decoding treats its input as
// hostile: it never panics, never allocates from an untrusted count, skips
// fields it does not know, and verifies every block it returns against its
// CID.
package message

import (
	"errors"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// MaxMessageSize is the largest encoded message body bsfs sends or accepts,
// in bytes, not counting the length prefix.
const MaxMessageSize = 4 << 20

// Errors returned by this package, tested with errors.Is.
var (
	// ErrTooLarge reports a frame or a message over the size limit.
	ErrTooLarge = errors.New("bitswap message too large")
	// ErrMalformed reports bytes that are not a valid Bitswap message, or a
	// message that cannot be encoded (an undefined CID).
	ErrMalformed = errors.New("malformed bitswap message")
)

// Version is the Bitswap protocol version a stream negotiated.
type Version int

// The protocol versions, oldest first.
const (
	V100 Version = iota // /ipfs/bitswap/1.0.0: blocks as raw data, CIDv0 only
	V110                // /ipfs/bitswap/1.1.0: blocks with their CID prefix
	V120                // /ipfs/bitswap/1.2.0: want-have, HAVE and DONT_HAVE
)

// Protocol IDs of the Bitswap versions.
const (
	ProtocolBitswap = "/ipfs/bitswap" // the unversioned ID, equivalent to 1.0.0
	Protocol100     = "/ipfs/bitswap/1.0.0"
	Protocol110     = "/ipfs/bitswap/1.1.0"
	Protocol120     = "/ipfs/bitswap/1.2.0"
)

// VersionOf returns the version a protocol ID names, and false for an ID
// that is not Bitswap's.
func VersionOf(protocolID string) (Version, bool) {
	switch protocolID {
	case Protocol120:
		return V120, true
	case Protocol110:
		return V110, true
	case Protocol100, ProtocolBitswap:
		return V100, true
	}
	return 0, false
}

// SupportsHave reports whether the version carries want-have entries and
// block presences (HAVE, DONT_HAVE).
func (v Version) SupportsHave() bool { return v == V120 }

// String returns the version's protocol ID.
func (v Version) String() string {
	switch v {
	case V100:
		return Protocol100
	case V110:
		return Protocol110
	case V120:
		return Protocol120
	}
	return "bitswap version " + strconv.Itoa(int(v))
}

// PresenceType says whether a peer has a block.
type PresenceType int32

// The presence types, with their wire values.
const (
	Have     PresenceType = 0
	DontHave PresenceType = 1
)

// Entry is one wantlist entry. A Cancel entry revokes an earlier want for
// CID whatever its type; its other fields are meaningless.
type Entry struct {
	CID          cid.Cid
	Priority     int32
	Cancel       bool
	WantType     wantlist.WantType
	SendDontHave bool // answer DONT_HAVE when the block is missing (1.2.0 only)
}

// Presence tells a peer whether we have a block.
type Presence struct {
	CID  cid.Cid
	Type PresenceType
}

// Message is one Bitswap message. Decoded messages keep whatever values the
// peer sent: CIDs are parseable but may be unsupported, and want or presence
// types may be out of range; consumers check both. Every Block of a decoded
// message has been hashed: its CID matches its Data.
type Message struct {
	Full         bool    // the wantlist replaces the previous one
	Wants        []Entry // wantlist entries, including cancels
	Blocks       []block.Block
	Presences    []Presence
	PendingBytes int32 // bytes the sender still has queued for us (1.2.0 only)
}

// Empty reports whether m has no wants, blocks or presences. Full and
// PendingBytes alone do not make a message worth sending.
func (m *Message) Empty() bool {
	return len(m.Wants) == 0 && len(m.Blocks) == 0 && len(m.Presences) == 0
}
