package message

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

var update = flag.Bool("update", false, "rewrite the golden files and the fuzz seeds in testdata")

// goldenMessages are fixed messages whose encodings are kept in testdata.
func goldenMessages(t testing.TB) []struct {
	name string
	v    Version
	m    *Message
} {
	return []struct {
		name string
		v    Version
		m    *Message
	}{
		{"v120", V120, &Message{
			Wants: []Entry{
				{CID: cidOf(t, prefixRaw, "golden want-block"), Priority: 2, WantType: wantlist.WantBlock},
				{CID: cidOf(t, prefixV0, "golden want-have"), Priority: 1, WantType: wantlist.WantHave, SendDontHave: true},
				{CID: cidOf(t, prefixRaw, "golden cancel"), Cancel: true},
			},
			Blocks: []block.Block{newBlock(t, prefixRaw, "golden block")},
			Presences: []Presence{
				{CID: cidOf(t, prefixRaw, "golden have"), Type: Have},
				{CID: cidOf(t, prefixRaw, "golden dont-have"), Type: DontHave},
			},
			PendingBytes: 4096,
		}},
		{"v110", V110, &Message{
			Full:   true,
			Wants:  []Entry{{CID: cidOf(t, prefixRaw, "golden want-block"), Priority: 2}},
			Blocks: []block.Block{newBlock(t, prefixBlake, "golden blake3 block")},
		}},
		{"v100", V100, &Message{
			Wants:  []Entry{{CID: cidOf(t, prefixV0, "golden want-block"), Priority: 1}},
			Blocks: []block.Block{newBlock(t, prefixV0, "golden block")},
		}},
	}
}

// TestGolden compares encodings with testdata/<name>.hex; -update rewrites
// them, and the fuzz seed corpus with them.
func TestGolden(t *testing.T) {
	for _, g := range goldenMessages(t) {
		t.Run(g.name, func(t *testing.T) {
			body, err := g.m.Marshal(g.v)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", g.name+".hex")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(hex.EncodeToString(body)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				writeSeed(t, "FuzzUnmarshal", "golden-"+g.name, body)
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := hex.DecodeString(strings.TrimSpace(string(text)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", body, want)
			}
			got, err := Unmarshal(want)
			if err != nil {
				t.Fatal(err)
			}
			again, err := got.Marshal(g.v)
			if err != nil || !bytes.Equal(again, want) {
				t.Fatalf("decoding and re-encoding the golden bytes gives %x, %v", again, err)
			}
		})
	}
	if *update {
		for name, body := range malformedSeeds(t) {
			writeSeed(t, "FuzzUnmarshal", name, body)
		}
	}
}

// malformedSeeds are broken bodies for the fuzz corpus.
func malformedSeeds(t testing.TB) map[string][]byte {
	c := cidOf(t, prefixRaw, "seed")
	return map[string][]byte{
		"empty-cid":       protobuf(nil).bytes(1, protobuf(nil).bytes(1, protobuf(nil).bytes(1, nil))),
		"bad-prefix":      protobuf(nil).bytes(3, protobuf(nil).bytes(1, []byte{1, 0x55, 0x99}).bytes(2, []byte("x"))),
		"unknown-fields":  protobuf(nil).append(unknowns()...).bytes(4, protobuf(nil).bytes(1, c.Bytes()).varint(2, 1)),
		"truncated":       []byte{0x0a, 0x10, 0x0a},
		"raw-block":       protobuf(nil).bytes(2, []byte("raw")),
		"negative-values": protobuf(nil).bytes(1, protobuf(nil).bytes(1, protobuf(nil).bytes(1, c.Bytes()).varint(2, 1<<64-1).varint(4, 1<<63))).varint(5, 1<<64-2),
	}
}

func writeSeed(t testing.TB, fuzz, name string, data []byte) {
	dir := filepath.Join("testdata", "fuzz", fuzz)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
}
