package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/bsfs/bsfs/block"
)

// FuzzUnmarshal checks that decoding never panics, that every decoded
// block matches its CID, and that a decoded message survives a 1.2.0
// round trip unchanged.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x10, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		for _, b := range m.Blocks {
			if _, err := block.Verified(b.CID, b.Data); err != nil {
				t.Fatalf("decoded block %s: %v", b.CID, err)
			}
		}
		for _, v := range []Version{V100, V110, V120} {
			body, err := m.Marshal(v)
			if errors.Is(err, ErrTooLarge) {
				return
			}
			if err != nil {
				t.Fatalf("re-encoding for %v: %v", v, err)
			}
			if len(body) != m.Size(v) {
				t.Fatalf("%v: Size %d, encoding %d", v, m.Size(v), len(body))
			}
			if v != V120 {
				continue
			}
			again, err := Unmarshal(body)
			if err != nil {
				t.Fatalf("decoding our own encoding: %v", err)
			}
			equal(t, again, m)
		}
	})
}

// FuzzReadFrom checks that reading frames never panics and fails only with
// the documented errors.
func FuzzReadFrom(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteTo(&buf, &Message{Full: true, Wants: []Entry{{CID: cidOf(f, prefixRaw, "frame"), Priority: 1}}}, V120); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x05, 0x0a})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 16 {
			_, err := ReadFrom(r, 1<<16)
			switch {
			case err == nil:
				continue
			case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrTooLarge), errors.Is(err, ErrMalformed):
				return
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
	})
}
