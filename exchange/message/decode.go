package message

import (
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// v0Prefix is how a 1.0.0 receiver names a block sent as raw data.
func v0Prefix() cid.Prefix {
	return cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
}

// Unmarshal decodes a message body of any version. Fields it does not know,
// or whose wire type is not the expected one, are skipped. It fails with
// ErrMalformed (wrapping the cause) if body is not protobuf, if a want or
// presence CID does not parse, or if a block has a bad prefix, an
// unsupported hash or more than block.MaxSize bytes. The returned blocks'
// Data alias body, which the caller must not modify afterwards.
func Unmarshal(body []byte) (*Message, error) {
	m := &Message{}
	for len(body) > 0 {
		num, typ, val, n, err := consumeField(body)
		if err != nil {
			return nil, err
		}
		body = body[n:]
		switch {
		case num == fieldWantlist && typ == protowire.BytesType:
			err = m.decodeWantlist(val.bytes)
		case num == fieldBlocks && typ == protowire.BytesType:
			var bl block.Block
			if bl, err = block.New(v0Prefix(), val.bytes); err == nil {
				m.Blocks = append(m.Blocks, bl)
			} else {
				err = fmt.Errorf("%w: block: %w", ErrMalformed, err)
			}
		case num == fieldPayload && typ == protowire.BytesType:
			err = m.decodePayload(val.bytes)
		case num == fieldPresences && typ == protowire.BytesType:
			err = m.decodePresence(val.bytes)
		case num == fieldPendingBytes && typ == protowire.VarintType:
			m.PendingBytes = int32(val.varint)
		}
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// decodeWantlist merges one Wantlist submessage into m, as protobuf merges
// a repeated occurrence of a singular message field.
func (m *Message) decodeWantlist(b []byte) error {
	for len(b) > 0 {
		num, typ, val, n, err := consumeField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case num == fieldEntries && typ == protowire.BytesType:
			e, err := decodeEntry(val.bytes)
			if err != nil {
				return err
			}
			m.Wants = append(m.Wants, e)
		case num == fieldFull && typ == protowire.VarintType:
			m.Full = val.varint != 0
		}
	}
	return nil
}

func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	var cidBytes []byte
	for len(b) > 0 {
		num, typ, val, n, err := consumeField(b)
		if err != nil {
			return Entry{}, err
		}
		b = b[n:]
		switch {
		case num == fieldEntryBlock && typ == protowire.BytesType:
			cidBytes = val.bytes
		case num == fieldEntryPriority && typ == protowire.VarintType:
			e.Priority = int32(val.varint)
		case num == fieldEntryCancel && typ == protowire.VarintType:
			e.Cancel = val.varint != 0
		case num == fieldEntryWantType && typ == protowire.VarintType:
			e.WantType = wantlist.WantType(int32(val.varint))
		case num == fieldEntrySendDontHave && typ == protowire.VarintType:
			e.SendDontHave = val.varint != 0
		}
	}
	c, err := cid.Cast(cidBytes)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: want CID: %w", ErrMalformed, err)
	}
	e.CID = c
	return e, nil
}

func (m *Message) decodePayload(b []byte) error {
	var prefix, data []byte
	for len(b) > 0 {
		num, typ, val, n, err := consumeField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case num == fieldBlockPrefix && typ == protowire.BytesType:
			prefix = val.bytes
		case num == fieldBlockData && typ == protowire.BytesType:
			data = val.bytes
		}
	}
	p, err := cid.PrefixFromBytes(prefix)
	if err != nil {
		return fmt.Errorf("%w: block prefix: %w", ErrMalformed, err)
	}
	bl, err := block.New(p, data)
	if err != nil {
		return fmt.Errorf("%w: block: %w", ErrMalformed, err)
	}
	m.Blocks = append(m.Blocks, bl)
	return nil
}

func (m *Message) decodePresence(b []byte) error {
	var p Presence
	var cidBytes []byte
	for len(b) > 0 {
		num, typ, val, n, err := consumeField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case num == fieldPresenceCID && typ == protowire.BytesType:
			cidBytes = val.bytes
		case num == fieldPresenceType && typ == protowire.VarintType:
			p.Type = PresenceType(int32(val.varint))
		}
	}
	c, err := cid.Cast(cidBytes)
	if err != nil {
		return fmt.Errorf("%w: presence CID: %w", ErrMalformed, err)
	}
	p.CID = c
	m.Presences = append(m.Presences, p)
	return nil
}

// fieldValue is a decoded field value: bytes for BytesType, varint for
// VarintType, nothing for the types this package never reads.
type fieldValue struct {
	bytes  []byte
	varint uint64
}

// consumeField reads one field from b and returns its number, wire type,
// value and encoded length.
func consumeField(b []byte) (protowire.Number, protowire.Type, fieldValue, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, fieldValue{}, 0, fmt.Errorf("%w: field tag: %w", ErrMalformed, protowire.ParseError(n))
	}
	var val fieldValue
	var m int
	switch typ {
	case protowire.BytesType:
		val.bytes, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		val.varint, m = protowire.ConsumeVarint(b[n:])
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return 0, 0, fieldValue{}, 0, fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(m))
	}
	return num, typ, val, n + m, nil
}
