package hostile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/poll"
)

// TestBadFraming (case 1): a length prefix over 4 MiB, a varint that
// overflows or is not minimal, a truncated frame. Each stream is reset,
// nothing of the announced size is allocated, and the peer is still
// served on a new stream.
func TestBadFraming(t *testing.T) {
	v := newVictim(t, exchange.Config{})
	blk := v.put(t, 1000)[0]
	p, in := connectPeer(t, v)

	cases := []struct {
		name  string
		bytes []byte
		eof   bool // close our side after writing
	}{
		{"prefix 4 MiB + 1", protowire.AppendVarint(nil, message.MaxMessageSize+1), false},
		{"prefix 1 GiB", protowire.AppendVarint(nil, 1<<30), false},
		{"prefix 2^63", protowire.AppendVarint(nil, 1<<63), false},
		{"varint overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, false},
		{"varint not minimal", []byte{0x85, 0x00}, false},
		{"truncated body", append(protowire.AppendVarint(nil, 100), make([]byte, 10)...), true},
		{"truncated prefix", []byte{0x80}, true},
	}
	resets := v.ex.Network().Stats().StreamsReset
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Eight streams in a row: a victim that allocated the announced
			// length would allocate at least 32 MiB.
			before := totalAlloc()
			for range 8 {
				s := open(t, p, v.host.ID())
				write(t, s, tc.bytes)
				if tc.eof {
					_ = s.CloseWrite()
				}
				awaitReset(t, s, 10*time.Second)
			}
			allocated := totalAlloc() - before
			t.Logf("8 streams: %d KiB allocated by the whole process", allocated>>10)
			if allocated > 16*mib {
				t.Errorf("allocated %d MiB for 8 bad frames", allocated/mib)
			}
			resets += 8
			poll.Until(t, 5*time.Second, "victim counts the resets", func() bool {
				return v.ex.Network().Stats().StreamsReset >= resets
			})

			// Still served, on a fresh stream.
			s := open(t, p, v.host.ID())
			defer s.Close()
			write(t, s, hostile.Frame(wantBlock(blk.CID)))
			in.waitBlock(t, blk.CID, 10*time.Second)
		})
	}
}

// TestMalformedMessages (case 2): malformed protobuf of every kind the
// message fuzzer's corpus holds and a few made by hand. A message that
// does not decode resets its stream; a valid but odd one (no wantlist
// field, an empty body) is accepted. The victim never panics and keeps
// serving the peer.
func TestMalformedMessages(t *testing.T) {
	v := newVictim(t, exchange.Config{})
	blk := v.put(t, 1000)[0]
	p, in := connectPeer(t, v)

	type body struct {
		name      string
		b         []byte
		malformed bool
	}
	unknownHashPrefix := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x300001, MhLength: 32}.Bytes()
	bodies := []body{
		{"empty body", nil, false},
		{"no wantlist field", hostile.PendingOnly(7), false},
		{"empty wantlist", hostile.Wantlist(true), false},
		{"empty CID bytes", hostile.Wantlist(false, hostile.Entry(nil, 1, wantlist.WantBlock, true)), true},
		{"garbage CID bytes", hostile.Wantlist(false, hostile.Entry([]byte{0x01, 0x55, 0xff}, 1, wantlist.WantBlock, true)), true},
		{"unknown hash in block prefix", hostile.Payload(unknownHashPrefix, []byte("data")), true},
		{"empty block prefix", hostile.Payload(nil, []byte("data")), true},
		{"truncated tag", []byte{0x0a}, true},
		{"length past the end", []byte{0x0a, 0x7f, 0x01}, true},
		{"group wire type, matched", []byte{0x0b, 0x0c}, false},
		{"group wire type, unmatched end", []byte{0x0b, 0x14}, true},
	}
	for _, dir := range []string{"../message/testdata/fuzz/FuzzUnmarshal", "testdata/messages"} {
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no corpus in %s", dir)
		}
		for _, f := range files {
			b := readCorpusFile(t, f)
			_, err := message.Unmarshal(bytes.Clone(b))
			bodies = append(bodies, body{"corpus " + filepath.Base(f), b, err != nil})
		}
	}

	served := 0
	for _, tc := range bodies {
		s := open(t, p, v.host.ID())
		write(t, s, hostile.Frame(tc.b))
		if tc.malformed {
			if err := resetWithin(s, 10*time.Second); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			continue
		}
		// Accepted: the same stream still carries a want, answered.
		want := v.put(t, 100)[0]
		write(t, s, hostile.Frame(wantBlock(want.CID)))
		in.waitBlock(t, want.CID, 10*time.Second)
		s.Close()
		served++
	}
	t.Logf("%d bodies sent, %d accepted", len(bodies), served)
	s := open(t, p, v.host.ID())
	defer s.Close()
	write(t, s, hostile.Frame(wantBlock(blk.CID)))
	in.waitBlock(t, blk.CID, 10*time.Second)
}

// readCorpusFile reads one file of a Go fuzz corpus holding a single
// []byte value.
func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a fuzz corpus file", path)
	}
	lit, ok1 := strings.CutPrefix(lines[1], "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	if !ok1 || !ok2 {
		t.Fatalf("%s: not a []byte value", path)
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
