package message

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// bigMessage has wants of both types, presences, and blocks of varied sizes.
func bigMessage(t testing.TB, wants, presences, blocks, blockSize int) *Message {
	m := &Message{Full: true, PendingBytes: 12345}
	for i := range wants {
		wt := wantlist.WantBlock
		if i%3 == 0 {
			wt = wantlist.WantHave
		}
		m.Wants = append(m.Wants, Entry{
			CID: cidOf(t, prefixRaw, fmt.Sprint("want ", i)), Priority: int32(i), WantType: wt, Cancel: i%7 == 0,
		})
	}
	for i := range presences {
		m.Presences = append(m.Presences, Presence{CID: cidOf(t, prefixRaw, fmt.Sprint("presence ", i)), Type: PresenceType(i % 2)})
	}
	for i := range blocks {
		p := prefixRaw
		if i%4 == 1 {
			p = prefixBlake // dropped by 1.0.0
		}
		data := make([]byte, blockSize+i*37)
		for j := range data {
			data[j] = byte(i + j)
		}
		m.Blocks = append(m.Blocks, newBlock(t, p, string(data)))
	}
	return m
}

func checkSplit(t *testing.T, m *Message, v Version, max int) []*Message {
	t.Helper()
	parts := Split(m, v, max)
	joined := &Message{}
	for i, p := range parts {
		if n := p.Size(v); n > max {
			t.Errorf("part %d/%d: %d bytes, limit %d", i, len(parts), n, max)
		}
		if p.Full != (i == 0 && m.Full) {
			t.Errorf("part %d: Full = %v", i, p.Full)
		}
		if p.PendingBytes != 0 && i != len(parts)-1 {
			t.Errorf("part %d of %d has PendingBytes", i, len(parts))
		}
		body, err := p.Marshal(v)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if len(body) != p.Size(v) {
			t.Fatalf("part %d: Size %d, encoding %d", i, p.Size(v), len(body))
		}
		joined.Wants = append(joined.Wants, p.Wants...)
		joined.Presences = append(joined.Presences, p.Presences...)
		joined.Blocks = append(joined.Blocks, p.Blocks...)
	}
	joined.Full = parts[0].Full
	joined.PendingBytes = parts[len(parts)-1].PendingBytes
	equal(t, joined, m)
	// The sizes the split works out are those of the parts' encodings.
	for i, p := range m.SizeFor(v).split(max) {
		if p.n != p.m.Size(v) || p.wl != p.m.wantlistSize(v) {
			t.Errorf("part %d sized %d (wantlist %d), encoding %d (wantlist %d)", i, p.n, p.wl, p.m.Size(v), p.m.wantlistSize(v))
		}
	}
	// WriteFrames writes the parts' frames.
	var want, got bytes.Buffer
	for _, p := range parts {
		if err := WriteTo(&want, p, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SizeFor(v).WriteFrames(&got, max); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("WriteFrames wrote %d bytes, not the %d bytes of the parts' frames", got.Len(), want.Len())
	}
	return parts
}

func TestSplit(t *testing.T) {
	m := bigMessage(t, 500, 300, 40, 2000)
	for _, v := range []Version{V100, V110, V120} {
		for _, max := range []int{1 << 12, 10_000, 1 << 16} {
			t.Run(fmt.Sprint(v, "/", max), func(t *testing.T) {
				parts := checkSplit(t, m, v, max)
				if min := m.Size(v) / max; len(parts) < min || len(parts) > 3*min+2 {
					t.Errorf("%d parts for %d bytes in parts of %d", len(parts), m.Size(v), max)
				}
			})
		}
	}
}

func TestSplitFits(t *testing.T) {
	m := sample(t)
	parts := Split(m, V120, MaxMessageSize)
	if len(parts) != 1 || parts[0] != m {
		t.Fatalf("a message that fits was split into %d parts", len(parts))
	}
	parts = Split(m, V120, 0) // 0 means MaxMessageSize
	if len(parts) != 1 || parts[0] != m {
		t.Fatalf("max 0: %d parts", len(parts))
	}
}

func TestSplitMaxSizeBlocks(t *testing.T) {
	m := bigMessage(t, 10, 0, 0, 0)
	for i := range 5 {
		data := make([]byte, block.MaxSize)
		data[0] = byte(i)
		m.Blocks = append(m.Blocks, newBlock(t, prefixRaw, string(data)))
	}
	parts := checkSplit(t, m, V120, MaxMessageSize)
	// Two blocks of 2 MiB and their framing exceed 4 MiB.
	if len(parts) != 5 {
		t.Errorf("5 blocks of 2 MiB in %d parts, want 5", len(parts))
	}
}

// An item larger than max gets a part of its own.
func TestSplitOversizeItem(t *testing.T) {
	m := &Message{Blocks: []block.Block{
		newBlock(t, prefixRaw, "small"),
		newBlock(t, prefixRaw, string(make([]byte, 500))),
		newBlock(t, prefixRaw, "small too"),
	}}
	parts := Split(m, V120, 100)
	if len(parts) != 3 || len(parts[1].Blocks) != 1 || len(parts[1].Blocks[0].Data) != 500 {
		t.Fatalf("parts = %v", parts)
	}
}

// Appending to a part does not overwrite the next part's items.
func TestSplitPartsAreCapped(t *testing.T) {
	m := bigMessage(t, 100, 0, 0, 0)
	parts := Split(m, V120, 1000)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	next := parts[1].Wants[0]
	parts[0].Wants = append(parts[0].Wants, Entry{})
	if parts[1].Wants[0] != next || m.Wants[len(parts[0].Wants)-1] != next {
		t.Fatal("appending to a part changed another part")
	}
}
