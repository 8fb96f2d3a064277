package message

import (
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// Field numbers of the Bitswap protobuf.
const (
	// Message
	fieldWantlist     protowire.Number = 1
	fieldBlocks       protowire.Number = 2 // raw block data, 1.0.0
	fieldPayload      protowire.Number = 3 // prefix and data, 1.1.0 on
	fieldPresences    protowire.Number = 4
	fieldPendingBytes protowire.Number = 5

	// Message.Wantlist
	fieldEntries protowire.Number = 1
	fieldFull    protowire.Number = 2

	// Message.Wantlist.Entry
	fieldEntryBlock        protowire.Number = 1
	fieldEntryPriority     protowire.Number = 2
	fieldEntryCancel       protowire.Number = 3
	fieldEntryWantType     protowire.Number = 4
	fieldEntrySendDontHave protowire.Number = 5

	// Message.Block
	fieldBlockPrefix protowire.Number = 1
	fieldBlockData   protowire.Number = 2

	// Message.BlockPresence
	fieldPresenceCID  protowire.Number = 1
	fieldPresenceType protowire.Number = 2
)

// Marshal returns m's protobuf encoding for version v. What v cannot carry
// is left out:
//
//   - V120 carries everything; blocks go with their CID prefix.
//   - V110 leaves out want-have entries (but not cancels, which have no
//     type), the want type and send-dont-have of the entries it keeps,
//     presences and PendingBytes.
//   - V100 is V110 with blocks as raw data, from which the receiver derives
//     a CIDv0; only blocks hashed with a full-length sha2-256 are carried.
//
// Marshal fails with ErrTooLarge if the encoding would exceed
// MaxMessageSize, and with ErrMalformed if an item it would carry has an
// undefined CID.
func (m *Message) Marshal(v Version) ([]byte, error) {
	if err := m.check(v); err != nil {
		return nil, err
	}
	n, wl := m.sizes(v)
	if n > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, MaxMessageSize)
	}
	return m.appendBody(make([]byte, 0, n), v, wl, appendData), nil
}

// AppendTo appends m's encoding for version v to buf, as Marshal does, and
// returns the extended buffer. On error buf is returned unchanged.
func (m *Message) AppendTo(buf []byte, v Version) ([]byte, error) {
	if err := m.check(v); err != nil {
		return buf, err
	}
	n, wl := m.sizes(v)
	if n > MaxMessageSize {
		return buf, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, MaxMessageSize)
	}
	if cap(buf)-len(buf) < n {
		grown := make([]byte, len(buf), len(buf)+n)
		copy(grown, buf)
		buf = grown
	}
	return m.appendBody(buf, v, wl, appendData), nil
}

// Size returns the exact length of m's encoding for version v.
func (m *Message) Size(v Version) int {
	n, _ := m.sizes(v)
	return n
}

// sizes returns the encoding's length and that of its wantlist submessage.
func (m *Message) sizes(v Version) (n, wl int) {
	if wl = m.wantlistSize(v); wl > 0 {
		n += protowire.SizeTag(fieldWantlist) + protowire.SizeBytes(wl)
	}
	for i := range m.Blocks {
		n += blockFieldSize(&m.Blocks[i], v)
	}
	for i := range m.Presences {
		n += presenceFieldSize(&m.Presences[i], v)
	}
	return n + pendingFieldSize(m.PendingBytes, v), wl
}

// check refuses unknown versions and undefined CIDs among what v carries.
func (m *Message) check(v Version) error {
	if v < V100 || v > V120 {
		return fmt.Errorf("bitswap: unknown protocol version %d", int(v))
	}
	for i := range m.Wants {
		if e := &m.Wants[i]; carriesEntry(e, v) && !e.CID.Defined() {
			return fmt.Errorf("%w: want %d has an undefined CID", ErrMalformed, i)
		}
	}
	for i := range m.Blocks {
		if !m.Blocks[i].CID.Defined() {
			return fmt.Errorf("%w: block %d has an undefined CID", ErrMalformed, i)
		}
	}
	if v.SupportsHave() {
		for i := range m.Presences {
			if !m.Presences[i].CID.Defined() {
				return fmt.Errorf("%w: presence %d has an undefined CID", ErrMalformed, i)
			}
		}
	}
	return nil
}

// dataFunc takes a block's data where appendBody reaches it, with the
// encoding so far in b, and returns the buffer appendBody goes on with.
type dataFunc func(b, data []byte) []byte

// appendData appends the data to b: the whole encoding in one buffer.
func appendData(b, data []byte) []byte { return append(b, data...) }

// appendBody appends the encoding; the caller has checked m and passes the
// wantlist's size from sizes. Each block's data goes through data, which
// returns the buffer to go on appending to (see appendData).
func (m *Message) appendBody(b []byte, v Version, wl int, data dataFunc) []byte {
	if wl > 0 {
		b = protowire.AppendTag(b, fieldWantlist, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(wl))
		for i := range m.Wants {
			e := &m.Wants[i]
			if !carriesEntry(e, v) {
				continue
			}
			b = protowire.AppendTag(b, fieldEntries, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(entrySize(e, v)))
			b = appendEntry(b, e, v)
		}
		if m.Full {
			b = protowire.AppendTag(b, fieldFull, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
	}
	for i := range m.Blocks {
		bl := &m.Blocks[i]
		switch {
		case v == V100:
			if carriesV0(bl.CID) {
				b = protowire.AppendTag(b, fieldBlocks, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(len(bl.Data)))
				b = data(b, bl.Data)
			}
		default:
			b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(payloadSize(bl)))
			b = appendPayload(b, bl, data)
		}
	}
	if v.SupportsHave() {
		for i := range m.Presences {
			p := &m.Presences[i]
			b = protowire.AppendTag(b, fieldPresences, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(presenceSize(p)))
			b = appendCID(b, fieldPresenceCID, p.CID)
			if p.Type != Have {
				b = protowire.AppendTag(b, fieldPresenceType, protowire.VarintType)
				b = protowire.AppendVarint(b, int32Wire(int32(p.Type)))
			}
		}
		if m.PendingBytes != 0 {
			b = protowire.AppendTag(b, fieldPendingBytes, protowire.VarintType)
			b = protowire.AppendVarint(b, int32Wire(m.PendingBytes))
		}
	}
	return b
}

// wantlistSize is the length of the Wantlist submessage, 0 when it is not
// written (no entry v carries and not Full).
func (m *Message) wantlistSize(v Version) int {
	n := 0
	for i := range m.Wants {
		n += entryFieldSize(&m.Wants[i], v)
	}
	if m.Full {
		n += fullSize
	}
	return n
}

// fullSize is the size of Wantlist.full = true.
const fullSize = 2

// carriesEntry reports whether v can carry e: before 1.2.0 only cancels
// and want-blocks.
func carriesEntry(e *Entry, v Version) bool {
	return v.SupportsHave() || e.Cancel || e.WantType != wantlist.WantHave
}

// entryFieldSize is the size of e as a Wantlist.entries field, 0 if v does
// not carry it.
func entryFieldSize(e *Entry, v Version) int {
	if !carriesEntry(e, v) {
		return 0
	}
	return protowire.SizeTag(fieldEntries) + protowire.SizeBytes(entrySize(e, v))
}

// entrySize is the length of the Entry submessage.
func entrySize(e *Entry, v Version) int {
	n := cidFieldSize(e.CID)
	if e.Priority != 0 {
		n += 1 + protowire.SizeVarint(int32Wire(e.Priority))
	}
	if e.Cancel {
		n += 2
	}
	if v.SupportsHave() {
		if e.WantType != wantlist.WantBlock {
			n += 1 + protowire.SizeVarint(int32Wire(int32(e.WantType)))
		}
		if e.SendDontHave {
			n += 2
		}
	}
	return n
}

func appendEntry(b []byte, e *Entry, v Version) []byte {
	b = appendCID(b, fieldEntryBlock, e.CID)
	if e.Priority != 0 {
		b = protowire.AppendTag(b, fieldEntryPriority, protowire.VarintType)
		b = protowire.AppendVarint(b, int32Wire(e.Priority))
	}
	if e.Cancel {
		b = protowire.AppendTag(b, fieldEntryCancel, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if v.SupportsHave() {
		if e.WantType != wantlist.WantBlock {
			b = protowire.AppendTag(b, fieldEntryWantType, protowire.VarintType)
			b = protowire.AppendVarint(b, int32Wire(int32(e.WantType)))
		}
		if e.SendDontHave {
			b = protowire.AppendTag(b, fieldEntrySendDontHave, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
	}
	return b
}

// blockFieldSize is the size of bl as a blocks (1.0.0) or payload field, 0
// if v does not carry it.
func blockFieldSize(bl *block.Block, v Version) int {
	if v == V100 {
		if !carriesV0(bl.CID) {
			return 0
		}
		return protowire.SizeTag(fieldBlocks) + protowire.SizeBytes(len(bl.Data))
	}
	return protowire.SizeTag(fieldPayload) + protowire.SizeBytes(payloadSize(bl))
}

// carriesV0 reports whether a block under c survives 1.0.0, whose receiver
// rebuilds the CID from the data as a sha2-256 CIDv0.
func carriesV0(c cid.Cid) bool {
	p := c.Prefix()
	return p.MhType == mh.SHA2_256 && p.MhLength == 32
}

// payloadSize is the length of the Block submessage.
func payloadSize(bl *block.Block) int {
	n := protowire.SizeTag(fieldBlockPrefix) + protowire.SizeBytes(prefixSize(bl.CID.Prefix()))
	if len(bl.Data) > 0 {
		n += protowire.SizeTag(fieldBlockData) + protowire.SizeBytes(len(bl.Data))
	}
	return n
}

func appendPayload(b []byte, bl *block.Block, data dataFunc) []byte {
	p := bl.CID.Prefix()
	b = protowire.AppendTag(b, fieldBlockPrefix, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(prefixSize(p)))
	b = protowire.AppendVarint(b, p.Version)
	b = protowire.AppendVarint(b, p.Codec)
	b = protowire.AppendVarint(b, p.MhType)
	b = protowire.AppendVarint(b, uint64(p.MhLength))
	if len(bl.Data) > 0 {
		b = protowire.AppendTag(b, fieldBlockData, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(bl.Data)))
		b = data(b, bl.Data)
	}
	return b
}

// prefixSize is the length of p in its binary form: four unsigned varints
// (version, codec, multihash type, digest length), as cid.Prefix.Bytes
// writes them.
func prefixSize(p cid.Prefix) int {
	return protowire.SizeVarint(p.Version) + protowire.SizeVarint(p.Codec) +
		protowire.SizeVarint(p.MhType) + protowire.SizeVarint(uint64(p.MhLength))
}

// presenceFieldSize is the size of p as a blockPresences field, 0 if v
// does not carry presences.
func presenceFieldSize(p *Presence, v Version) int {
	if !v.SupportsHave() {
		return 0
	}
	return protowire.SizeTag(fieldPresences) + protowire.SizeBytes(presenceSize(p))
}

// presenceSize is the length of the BlockPresence submessage.
func presenceSize(p *Presence) int {
	n := cidFieldSize(p.CID)
	if p.Type != Have {
		n += 1 + protowire.SizeVarint(int32Wire(int32(p.Type)))
	}
	return n
}

// pendingFieldSize is the size of the pendingBytes field for v.
func pendingFieldSize(pending int32, v Version) int {
	if pending == 0 || !v.SupportsHave() {
		return 0
	}
	return protowire.SizeTag(fieldPendingBytes) + protowire.SizeVarint(int32Wire(pending))
}

// cidFieldSize is the size of a bytes field holding c's binary form, which
// proto3 omits when empty.
func cidFieldSize(c cid.Cid) int {
	if n := c.ByteLen(); n > 0 {
		return 1 + protowire.SizeBytes(n)
	}
	return 0
}

// appendCID appends c's binary form as field num without copying it to an
// intermediate slice.
func appendCID(b []byte, num protowire.Number, c cid.Cid) []byte {
	k := c.KeyString()
	if k == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, k)
}

// int32Wire is the varint value protobuf writes for an int32 or enum:
// negative values are sign-extended to 64 bits.
func int32Wire(x int32) uint64 { return uint64(int64(x)) }
