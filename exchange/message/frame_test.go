package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// countingWriter records the Write calls it gets.
type countingWriter struct {
	bytes.Buffer
	calls int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.Buffer.Write(p)
}

func TestFramesRoundTrip(t *testing.T) {
	msgs := []*Message{sample(t), {}, {Full: true}, sample(t)}
	var w countingWriter
	for _, m := range msgs {
		before := w.Len()
		if err := WriteTo(&w, m, V120); err != nil {
			t.Fatal(err)
		}
		if n := m.Size(V120); w.Len()-before != protowire.SizeVarint(uint64(n))+n {
			t.Errorf("frame of %d bytes for a %d-byte body", w.Len()-before, n)
		}
	}
	if w.calls != len(msgs) {
		t.Errorf("%d Write calls for %d frames", w.calls, len(msgs))
	}
	r := bufio.NewReader(&w.Buffer)
	for i, want := range msgs {
		got, err := ReadFrom(r, MaxMessageSize)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		equal(t, got, want)
	}
	if _, err := ReadFrom(r, MaxMessageSize); err != io.EOF {
		t.Fatalf("after the last frame: err = %v, want io.EOF", err)
	}
}

func TestReadFromLimit(t *testing.T) {
	m := sample(t)
	body, err := m.Marshal(V120)
	if err != nil {
		t.Fatal(err)
	}
	frame := protowire.AppendVarint(nil, uint64(len(body)))
	frame = append(frame, body...)
	if _, err := ReadFrom(bufio.NewReader(bytes.NewReader(frame)), len(body)); err != nil {
		t.Fatalf("frame at the limit: %v", err)
	}
	if _, err := ReadFrom(bufio.NewReader(bytes.NewReader(frame)), len(body)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("frame over the limit: err = %v, want ErrTooLarge", err)
	}
	// A zero limit means MaxMessageSize.
	huge := protowire.AppendVarint(nil, MaxMessageSize+1)
	if _, err := ReadFrom(bufio.NewReader(bytes.NewReader(huge)), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("frame over MaxMessageSize: err = %v, want ErrTooLarge", err)
	}
}

// A peer announcing a frame over the limit costs nothing: the body is
// refused before it is allocated.
func TestReadFromRefusesBeforeAllocating(t *testing.T) {
	const runs = 50
	header := protowire.AppendVarint(nil, MaxMessageSize+1)
	header = append(header, make([]byte, 16)...) // a few body bytes follow
	src := bytes.NewReader(header)
	r := bufio.NewReaderSize(src, 64)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		src.Reset(header)
		r.Reset(src)
		if _, err := ReadFrom(r, MaxMessageSize); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4096 {
		t.Fatalf("refusing a %d-byte frame allocated %d bytes per call", MaxMessageSize+1, perRun)
	}
}

func TestReadFromBadFrames(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"truncated body", append([]byte{10}, "12345"...), io.ErrUnexpectedEOF},
		{"truncated length", []byte{0x80}, io.ErrUnexpectedEOF},
		{"length overflow", bytes.Repeat([]byte{0xff}, 10), ErrMalformed},
		{"ten-byte length", append(bytes.Repeat([]byte{0x80}, 9), 0x01), ErrMalformed},
		{"non-minimal length", []byte{0x81, 0x00, 0x0a}, ErrMalformed},
		{"malformed body", []byte{2, 0x0a, 0x05}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadFrom(bufio.NewReader(bytes.NewReader(tt.frame)), MaxMessageSize)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadFrom = %+v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

// failingWriter keeps what it is written, and where each Write's bytes
// were, and fails from its failAt-th Write on.
type failingWriter struct {
	bytes.Buffer
	at     []*byte
	failAt int
}

var errWrite = errors.New("write failed")

func (w *failingWriter) Write(p []byte) (int, error) {
	w.at = append(w.at, &p[0])
	if len(w.at) >= w.failAt {
		return 0, errWrite
	}
	return w.Buffer.Write(p)
}

// WriteFrames passes block data to the writer as the blocks hold it, and
// stops at the first failed Write.
func TestWriteFramesStreamsBlockData(t *testing.T) {
	m := benchMessage(t, 3)
	w := &failingWriter{failAt: 1 << 30}
	if err := m.SizeFor(V120).WriteFrames(w, MaxMessageSize); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := WriteTo(&want, m, V120); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), want.Bytes()) {
		t.Fatal("WriteFrames wrote other bytes than WriteTo")
	}
	for i, b := range m.Blocks {
		if !slices.Contains(w.at, &b.Data[0]) {
			t.Errorf("block %d's data was copied, not written from the block", i)
		}
	}
	for failAt := 1; failAt <= len(w.at); failAt++ {
		fw := &failingWriter{failAt: failAt}
		if err := m.SizeFor(V120).WriteFrames(fw, MaxMessageSize); !errors.Is(err, errWrite) {
			t.Fatalf("Write %d failing: err = %v", failAt, err)
		}
		if len(fw.at) != failAt {
			t.Fatalf("Write %d failing: %d Writes made", failAt, len(fw.at))
		}
	}
	// Small blocks are gathered: 256 of 4 KiB take a Write per 64 KiB.
	small := &Message{}
	for i := range 256 {
		small.Blocks = append(small.Blocks, newBlock(t, prefixRaw, fmt.Sprint(i, strings.Repeat("x", 4<<10))))
	}
	sw := &failingWriter{failAt: 1 << 30}
	if err := small.SizeFor(V120).WriteFrames(sw, MaxMessageSize); err != nil {
		t.Fatal(err)
	}
	want.Reset()
	if err := WriteTo(&want, small, V120); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sw.Bytes(), want.Bytes()) {
		t.Fatal("WriteFrames wrote other bytes than WriteTo for small blocks")
	}
	if max := want.Len()/streamBuffer + 1; len(sw.at) > max {
		t.Errorf("%d Writes for %d bytes of small blocks, want at most %d", len(sw.at), want.Len(), max)
	}
}
