package message

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

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
