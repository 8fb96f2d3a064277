package message

import (
	"fmt"
	"io"
	"testing"

	"github.com/bsfs/bsfs/exchange/wantlist"
)

// benchMessage is a message of n blocks of 256 KiB.
func benchMessage(tb testing.TB, n int) *Message {
	m := &Message{}
	for i := range n {
		data := make([]byte, 256<<10)
		for j := range data {
			data[j] = byte(i * j)
		}
		m.Blocks = append(m.Blocks, newBlock(tb, prefixRaw, string(data)))
	}
	return m
}

func benchMessages(b *testing.B) map[string]*Message {
	// 16 blocks of 256 KiB are exactly 4 MiB of data, over MaxMessageSize
	// once framed; 15 is the most a message can hold.
	blocks := benchMessage(b, 15)
	wants := &Message{Full: true}
	for i := range 1000 {
		wants.Wants = append(wants.Wants, Entry{
			CID: cidOf(b, prefixRaw, fmt.Sprint(i)), Priority: int32(i), WantType: wantlist.WantType(i % 2), SendDontHave: true,
		})
	}
	return map[string]*Message{"15x256KiB": blocks, "1000wants": wants}
}

func BenchmarkMarshal(b *testing.B) {
	for _, name := range []string{"15x256KiB", "1000wants"} {
		m := benchMessages(b)[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(m.Size(V120)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Marshal(V120); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	for _, name := range []string{"15x256KiB", "1000wants"} {
		m := benchMessages(b)[name]
		body, err := m.Marshal(V120)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Unmarshal(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSize(b *testing.B) {
	m := benchMessages(b)["1000wants"]
	b.ReportAllocs()
	for b.Loop() {
		m.Size(V120)
	}
}

// BenchmarkWriteFrames writes a message of 4 blocks of 256 KiB, what the
// decision engine sends by default, as the network does.
func BenchmarkWriteFrames(b *testing.B) {
	m := benchMessage(b, 4)
	sized := m.SizeFor(V120)
	b.SetBytes(int64(sized.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := sized.WriteFrames(io.Discard, MaxMessageSize); err != nil {
			b.Fatal(err)
		}
	}
}
