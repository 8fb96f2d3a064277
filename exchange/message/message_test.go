package message

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

var (
	prefixV0    = cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
	prefixRaw   = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}
	prefixBlake = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE3, MhLength: -1}
)

func newBlock(t testing.TB, p cid.Prefix, data string) block.Block {
	t.Helper()
	b, err := block.New(p, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cidOf(t testing.TB, p cid.Prefix, data string) cid.Cid {
	t.Helper()
	return newBlock(t, p, data).CID
}

// sample is a message using every feature of 1.2.0.
func sample(t testing.TB) *Message {
	return &Message{
		Full: true,
		Wants: []Entry{
			{CID: cidOf(t, prefixRaw, "want-block"), Priority: 10, WantType: wantlist.WantBlock, SendDontHave: true},
			{CID: cidOf(t, prefixV0, "want-have"), Priority: 5, WantType: wantlist.WantHave, SendDontHave: true},
			{CID: cidOf(t, prefixRaw, "negative"), Priority: -3},
			{CID: cidOf(t, prefixRaw, "cancel-have"), Cancel: true, WantType: wantlist.WantHave},
			{CID: cidOf(t, prefixRaw, "cancel-block"), Cancel: true},
		},
		Blocks: []block.Block{
			newBlock(t, prefixV0, "a dag-pb block"),
			newBlock(t, prefixRaw, "a raw block"),
			newBlock(t, prefixBlake, "a blake3 block"),
			newBlock(t, prefixRaw, ""),
		},
		Presences: []Presence{
			{CID: cidOf(t, prefixRaw, "have"), Type: Have},
			{CID: cidOf(t, prefixRaw, "dont-have"), Type: DontHave},
		},
		PendingBytes: 1 << 20,
	}
}

func roundTrip(t *testing.T, m *Message, v Version) *Message {
	t.Helper()
	body, err := m.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%v): %v", v, err)
	}
	if got := m.Size(v); got != len(body) {
		t.Fatalf("Size(%v) = %d, encoding has %d bytes", v, got, len(body))
	}
	got, err := Unmarshal(body)
	if err != nil {
		t.Fatalf("Unmarshal(%v): %v", v, err)
	}
	return got
}

// equal compares messages field by field, treating nil and empty alike.
func equal(t *testing.T, got, want *Message) {
	t.Helper()
	if got.Full != want.Full {
		t.Errorf("Full = %v, want %v", got.Full, want.Full)
	}
	if !slices.Equal(got.Wants, want.Wants) {
		t.Errorf("Wants =\n%v\nwant\n%v", got.Wants, want.Wants)
	}
	if !slices.EqualFunc(got.Blocks, want.Blocks, func(a, b block.Block) bool {
		return a.CID == b.CID && bytes.Equal(a.Data, b.Data)
	}) {
		t.Errorf("Blocks =\n%v\nwant\n%v", got.Blocks, want.Blocks)
	}
	if !slices.Equal(got.Presences, want.Presences) {
		t.Errorf("Presences = %v, want %v", got.Presences, want.Presences)
	}
	if got.PendingBytes != want.PendingBytes {
		t.Errorf("PendingBytes = %d, want %d", got.PendingBytes, want.PendingBytes)
	}
}

func TestRoundTripV120(t *testing.T) {
	m := sample(t)
	equal(t, roundTrip(t, m, V120), m)
}

func TestRoundTripV110(t *testing.T) {
	m := sample(t)
	want := &Message{
		Full: true,
		Wants: []Entry{
			{CID: m.Wants[0].CID, Priority: 10}, // no send-dont-have
			// the want-have is dropped
			{CID: m.Wants[2].CID, Priority: -3},
			{CID: m.Wants[3].CID, Cancel: true}, // a cancel has no type
			{CID: m.Wants[4].CID, Cancel: true},
		},
		Blocks: m.Blocks, // all of them, with their prefixes
		// no presences, no pending bytes
	}
	equal(t, roundTrip(t, m, V110), want)
}

func TestRoundTripV100(t *testing.T) {
	m := sample(t)
	// Raw data arrives as dag-pb CIDv0 blocks; the blake3 block is dropped.
	var blocks []block.Block
	for _, b := range m.Blocks {
		if b.CID.Prefix().MhType == mh.SHA2_256 {
			blocks = append(blocks, block.Block{CID: cid.NewCidV0(b.CID.Hash()), Data: b.Data})
		}
	}
	if len(blocks) != 3 {
		t.Fatalf("sample has %d sha2-256 blocks, want 3", len(blocks))
	}
	want := &Message{
		Full: true,
		Wants: []Entry{
			{CID: m.Wants[0].CID, Priority: 10},
			{CID: m.Wants[2].CID, Priority: -3},
			{CID: m.Wants[3].CID, Cancel: true},
			{CID: m.Wants[4].CID, Cancel: true},
		},
		Blocks: blocks,
	}
	equal(t, roundTrip(t, m, V100), want)
}

func TestEmptyMessage(t *testing.T) {
	m := &Message{}
	if !m.Empty() {
		t.Error("zero message is not Empty")
	}
	for _, v := range []Version{V100, V110, V120} {
		body, err := m.Marshal(v)
		if err != nil || len(body) != 0 {
			t.Errorf("Marshal(%v) = %x, %v; want no bytes", v, body, err)
		}
	}
	got, err := Unmarshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Empty() || got.Full || got.Wants != nil {
		t.Errorf("Unmarshal(nil) = %+v", got)
	}
	if (&Message{Full: true, PendingBytes: 3}).Empty() != true {
		t.Error("Full and PendingBytes alone made a message non-empty")
	}
	if (&Message{Presences: []Presence{{}}}).Empty() {
		t.Error("message with a presence is Empty")
	}
}

// A Full message with no wants still says so on the wire.
func TestFullWithoutWants(t *testing.T) {
	m := &Message{Full: true}
	body, err := m.Marshal(V110)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x0a, 0x02, 0x10, 0x01}; !bytes.Equal(body, want) {
		t.Fatalf("encoding = %x, want %x", body, want)
	}
	got, err := Unmarshal(body)
	if err != nil || !got.Full {
		t.Fatalf("Unmarshal = %+v, %v", got, err)
	}
}

// TestWireBytes checks the encoding against bytes written out by hand from
// the field numbers of the specification.
func TestWireBytes(t *testing.T) {
	c := cidOf(t, prefixV0, "hello")
	raw := newBlock(t, prefixRaw, "xyz")
	cb := fmt.Sprintf("%x", c.Bytes()) // 34 bytes: 1220...
	m := &Message{
		Full:         true,
		Wants:        []Entry{{CID: c, Priority: 1, WantType: wantlist.WantHave, SendDontHave: true}},
		Blocks:       []block.Block{raw},
		Presences:    []Presence{{CID: c, Type: DontHave}},
		PendingBytes: -1,
	}
	tests := []struct {
		v    Version
		want string
	}{
		{V120, "" +
			"0a2e" + // wantlist (1), 46 bytes
			/**/ "0a2a" + // entries (1), 42 bytes
			/*    */ "0a22" + cb + // block (1), 34 bytes
			/*    */ "1001" + // priority (2) = 1
			/*    */ "2001" + // wantType (4) = Have
			/*    */ "2801" + // sendDontHave (5) = true
			/**/ "1001" + // full (2) = true
			"1a0b" + // payload (3), 11 bytes
			/**/ "0a0401551220" + // prefix (1): v1, raw, sha2-256, 32
			/**/ "1203" + "78797a" + // data (2): "xyz"
			"2226" + // blockPresences (4), 38 bytes
			/**/ "0a22" + cb + // cid (1)
			/**/ "1001" + // type (2) = DontHave
			"28ffffffffffffffffff01"}, // pendingBytes (5) = -1, sign-extended
		{V110, "" +
			"0a02" + "1001" + // wantlist: the want-have is gone, full stays
			"1a0b" + "0a0401551220" + "1203" + "78797a"},
		{V100, "" +
			"0a02" + "1001" +
			"1203" + "78797a"}, // blocks (2): raw data
	}
	for _, tt := range tests {
		body, err := m.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", body); got != tt.want {
			t.Errorf("%v:\n got %s\nwant %s", tt.v, got, tt.want)
		}
	}
}

func TestVersions(t *testing.T) {
	tests := []struct {
		id   string
		v    Version
		have bool
	}{
		{"/ipfs/bitswap/1.2.0", V120, true},
		{"/ipfs/bitswap/1.1.0", V110, false},
		{"/ipfs/bitswap/1.0.0", V100, false},
		{"/ipfs/bitswap", V100, false},
	}
	for _, tt := range tests {
		v, ok := VersionOf(tt.id)
		if !ok || v != tt.v || v.SupportsHave() != tt.have {
			t.Errorf("VersionOf(%q) = %v, %v (have %v)", tt.id, v, ok, v.SupportsHave())
		}
	}
	for _, id := range []string{"", "/ipfs/bitswap/1.3.0", "/ipfs/kad/1.0.0"} {
		if _, ok := VersionOf(id); ok {
			t.Errorf("VersionOf(%q) accepted", id)
		}
	}
	if V110.String() != Protocol110 {
		t.Errorf("V110.String() = %q", V110.String())
	}
	if _, err := (&Message{}).Marshal(Version(7)); err == nil {
		t.Error("Marshal accepted an unknown version")
	}
}

func TestMarshalErrors(t *testing.T) {
	c := cidOf(t, prefixRaw, "x")
	bad := []*Message{
		{Wants: []Entry{{CID: c}, {}}},
		{Blocks: []block.Block{{Data: []byte("x")}}},
		{Presences: []Presence{{Type: DontHave}}},
	}
	for i, m := range bad {
		if _, err := m.Marshal(V120); !errors.Is(err, ErrMalformed) {
			t.Errorf("message %d: Marshal err = %v, want ErrMalformed", i, err)
		}
		var buf bytes.Buffer
		if err := WriteTo(&buf, m, V120); !errors.Is(err, ErrMalformed) || buf.Len() != 0 {
			t.Errorf("message %d: WriteTo err = %v after %d bytes, want ErrMalformed and nothing written", i, err, buf.Len())
		}
	}
	// What a version does not carry is not checked: an undefined CID in a
	// want-have or a presence does not stop a 1.1.0 message.
	m := &Message{Wants: []Entry{{WantType: wantlist.WantHave}}, Presences: []Presence{{}}}
	if _, err := m.Marshal(V110); err != nil {
		t.Errorf("V110 refused what it drops: %v", err)
	}

	big := &Message{}
	for i := range 3 {
		big.Blocks = append(big.Blocks, newBlock(t, prefixRaw, string(bytes.Repeat([]byte{byte(i)}, block.MaxSize))))
	}
	if _, err := big.Marshal(V120); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Marshal of %d bytes: err = %v, want ErrTooLarge", big.Size(V120), err)
	}
	prefix := []byte("keep")
	out, err := big.AppendTo(prefix, V120)
	if !errors.Is(err, ErrTooLarge) || string(out) != "keep" {
		t.Errorf("AppendTo = %q, %v; want buffer unchanged and ErrTooLarge", out, err)
	}
	if err := WriteTo(&bytes.Buffer{}, big, V120); !errors.Is(err, ErrTooLarge) {
		t.Errorf("WriteTo: err = %v, want ErrTooLarge", err)
	}
}

func TestAppendTo(t *testing.T) {
	m := sample(t)
	body, err := m.Marshal(V120)
	if err != nil {
		t.Fatal(err)
	}
	for _, buf := range [][]byte{nil, []byte("head"), make([]byte, 2, 4096)} {
		head := slices.Clone(buf)
		out, err := m.AppendTo(buf, V120)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:len(head)], head) || !bytes.Equal(out[len(head):], body) {
			t.Errorf("AppendTo(%q) = %x", head, out)
		}
	}
}

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

func (p protobuf) append(b ...byte) protobuf { return append(p, b...) }

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

func TestSizeAndMarshalAllocations(t *testing.T) {
	m := sample(t)
	for _, v := range []Version{V100, V110, V120} {
		if n := testing.AllocsPerRun(20, func() { m.Size(v) }); n != 0 {
			t.Errorf("Size(%v) allocates %v times", v, n)
		}
		if n := testing.AllocsPerRun(20, func() { _, _ = m.Marshal(v) }); n != 1 {
			t.Errorf("Marshal(%v) allocates %v times, want 1", v, n)
		}
		buf := make([]byte, 0, 1<<16)
		if n := testing.AllocsPerRun(20, func() { _, _ = m.AppendTo(buf[:0], v) }); n != 0 {
			t.Errorf("AppendTo(%v) with room allocates %v times", v, n)
		}
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
