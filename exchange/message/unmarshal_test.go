package message

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// protobuf builds wire bytes field by field for decoding tests.
type protobuf []byte

func (p protobuf) bytes(num protowire.Number, b []byte) protobuf {
	p = protowire.AppendTag(p, num, protowire.BytesType)
	return protowire.AppendBytes(p, b)
}

func (p protobuf) varint(num protowire.Number, v uint64) protobuf {
	p = protowire.AppendTag(p, num, protowire.VarintType)
	return protowire.AppendVarint(p, v)
}

func (p protobuf) fixed32(num protowire.Number, v uint32) protobuf {
	p = protowire.AppendTag(p, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(p, v)
}

func (p protobuf) fixed64(num protowire.Number, v uint64) protobuf {
	p = protowire.AppendTag(p, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(p, v)
}

func (p protobuf) group(num protowire.Number, inner protobuf) protobuf {
	p = protowire.AppendTag(p, num, protowire.StartGroupType)
	p = append(p, inner...)
	return protowire.AppendTag(p, num, protowire.EndGroupType)
}

func (p protobuf) append(b ...byte) protobuf { return append(p, b...) }

// unknowns is one field of every wire type, at numbers no message uses.
func unknowns() protobuf {
	return protobuf(nil).
		varint(100, 7).
		bytes(101, []byte("future")).
		fixed32(102, 1).
		fixed64(103, 2).
		group(104, protobuf(nil).varint(1, 1).bytes(2, []byte("x")))
}

func TestUnmarshalSkipsUnknownFields(t *testing.T) {
	c1 := cidOf(t, prefixRaw, "one")
	c2 := cidOf(t, prefixRaw, "two")
	b := newBlock(t, prefixRaw, "payload")
	entry := protobuf(nil).
		bytes(1, c1.Bytes()).
		append(unknowns()...).
		varint(2, 9).
		varint(4, 1).
		fixed32(3, 1). // cancel with the wrong wire type: skipped
		varint(5, 1)
	wl := protobuf(nil).
		bytes(1, entry).
		append(unknowns()...).
		varint(2, 1)
	body := protobuf(nil).
		append(unknowns()...).
		bytes(1, wl).
		varint(4, 5). // blockPresences with the wrong wire type: skipped
		bytes(3, protobuf(nil).bytes(1, b.CID.Prefix().Bytes()).varint(9, 9).bytes(2, b.Data)).
		bytes(4, protobuf(nil).bytes(1, c2.Bytes()).varint(2, 1).append(unknowns()...)).
		bytes(1, protobuf(nil).bytes(1, protobuf(nil).bytes(1, c2.Bytes()).varint(3, 1))). // a second wantlist merges
		varint(5, 42).
		append(unknowns()...)
	got, err := Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, &Message{
		Full: true,
		Wants: []Entry{
			{CID: c1, Priority: 9, WantType: wantlist.WantHave, SendDontHave: true},
			{CID: c2, Cancel: true},
		},
		Blocks:       []block.Block{b},
		Presences:    []Presence{{CID: c2, Type: DontHave}},
		PendingBytes: 42,
	})
}

// Out-of-range enum values and unsupported CIDs pass through for the
// consumer to judge.
func TestUnmarshalPassesThrough(t *testing.T) {
	long, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_512, MhLength: -1}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	ident, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	md5, err := mh.Sum([]byte("x"), mh.MD5, -1)
	if err != nil {
		t.Fatal(err)
	}
	odd := cid.NewCidV1(cid.Raw, md5)
	body := protobuf(nil).
		bytes(1, protobuf(nil).
			bytes(1, protobuf(nil).bytes(1, ident.Bytes()).varint(4, 7)).
			bytes(1, protobuf(nil).bytes(1, odd.Bytes()).varint(2, uint64(1<<40+5)))).
		bytes(4, protobuf(nil).bytes(1, long.Bytes()).varint(2, 9))
	got, err := Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, &Message{
		Wants: []Entry{
			{CID: ident, WantType: 7},
			{CID: odd, Priority: 5}, // an int32 keeps the low 32 bits
		},
		Presences: []Presence{{CID: long, Type: 9}},
	})
}

func TestUnmarshalMalformed(t *testing.T) {
	c := cidOf(t, prefixRaw, "c")
	want := func(inner protobuf) protobuf { return protobuf(nil).bytes(1, protobuf(nil).bytes(1, inner)) }
	payload := func(prefix, data []byte) protobuf {
		return protobuf(nil).bytes(3, protobuf(nil).bytes(1, prefix).bytes(2, data))
	}
	valid := want(protobuf(nil).bytes(1, c.Bytes()))
	rawPrefix := c.Prefix().Bytes()
	tests := []struct {
		name  string
		body  []byte
		cause error // also wrapped, if not nil
	}{
		{"entry without CID", want(protobuf(nil).varint(2, 1)), nil},
		{"entry with empty CID", want(protobuf(nil).bytes(1, nil)), nil},
		{"entry with garbage CID", want(protobuf(nil).bytes(1, []byte("not a cid"))), nil},
		{"entry CID with trailing bytes", want(protobuf(nil).bytes(1, append(c.Bytes(), 0))), nil},
		{"presence with bad CID", protobuf(nil).bytes(4, protobuf(nil).bytes(1, c.Bytes()[:10])), nil},
		{"payload without prefix", protobuf(nil).bytes(3, protobuf(nil).bytes(2, []byte("x"))), nil},
		{"payload with truncated prefix", payload([]byte{1, 0x55}, []byte("x")), nil},
		{"payload with unknown hash", payload([]byte{1, 0x55, 0x99, 0x20}, []byte("x")), nil},
		{"payload with unsupported hash", payload(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.MD5, MhLength: 16}.Bytes(), []byte("x")), block.ErrUnsupportedCID},
		{"payload with truncated digest", payload([]byte{1, 0x55, 0x12, 0x10}, []byte("x")), block.ErrUnsupportedCID},
		{"payload too large", payload(rawPrefix, make([]byte, block.MaxSize+1)), block.ErrTooLarge},
		{"raw block too large", protobuf(nil).bytes(2, make([]byte, block.MaxSize+1)), block.ErrTooLarge},
		{"identity payload over the CID limit", payload([]byte{1, 0x55, 0x00, 0x00}, make([]byte, 200)), block.ErrCIDTooLong},
		{"truncated", valid[:len(valid)-1], nil},
		{"truncated length", []byte{0x0a, 0x80}, nil},
		{"field number 0", []byte{0x00, 0x01}, nil},
		{"lone end group", []byte{0x0c}, nil},
		{"unknown wire type", []byte{0x0e}, nil},
		{"unterminated group", protobuf(nil).append(0x0b, 0x08, 0x01), nil},
		{"bad wantlist inside", protobuf(nil).bytes(1, []byte{0x0a, 0x05, 0x01}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Unmarshal(tt.body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal = %+v, %v; want ErrMalformed", m, err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("err = %v, want it to wrap %v", err, tt.cause)
			}
		})
	}
	if _, err := Unmarshal(valid); err != nil {
		t.Fatalf("the valid base case fails: %v", err)
	}
}

// An empty block arrives as a block with empty data, never nil: under
// 1.1.0 and 1.2.0 its payload has no data field at all.
func TestEmptyBlockDecodes(t *testing.T) {
	for _, v := range []Version{V120, V110, V100} {
		b := newBlock(t, prefixRaw, "")
		if v == V100 {
			b = newBlock(t, prefixV0, "")
		}
		got := roundTrip(t, &Message{Blocks: []block.Block{b}}, v)
		if len(got.Blocks) != 1 {
			t.Fatalf("%v: %d blocks decoded, want 1", v, len(got.Blocks))
		}
		if g := got.Blocks[0]; !g.CID.Equals(b.CID) || g.Data == nil || len(g.Data) != 0 || !g.Checked() {
			t.Fatalf("%v: decoded %s with data %q (nil %v), checked %v; want %s with empty data", v, g.CID, g.Data, g.Data == nil, g.Checked(), b.CID)
		}
	}
}
