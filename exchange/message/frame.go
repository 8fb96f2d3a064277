package message

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/multiformats/go-varint"
	"google.golang.org/protobuf/encoding/protowire"
)

// WriteTo writes m, encoded for version v, to w as one frame: the body's
// length as an unsigned varint, then the body, in a single Write call. It
// fails as Marshal does, before writing anything.
func WriteTo(w io.Writer, m *Message, v Version) error {
	return m.SizeFor(v).writeFrame(w)
}

// Sized is a message with the size of its encoding for one version,
// computed once: a sender can derive a time-out from it, then write it.
// Get one from SizeFor.
type Sized struct {
	m     *Message
	v     Version
	n, wl int // the encoding's length and its wantlist submessage's
}

// SizeFor returns m sized for version v.
func (m *Message) SizeFor(v Version) Sized {
	n, wl := m.sizes(v)
	return Sized{m: m, v: v, n: n, wl: wl}
}

// Len returns the length of the encoding.
func (s Sized) Len() int { return s.n }

// Version returns the version the message is sized for.
func (s Sized) Version() Version { return s.v }

// WriteFrames writes the message to w in the frame WriteTo writes when its
// encoding is at most max bytes (MaxMessageSize if max <= 0); a larger one
// is written as the frames of its Split parts, one after the other. A part
// that fails as Marshal does ends the writing before it. Unlike WriteTo it
// makes several Write calls a frame: block data is written from the blocks
// themselves, never copied into the frame.
func (s Sized) WriteFrames(w io.Writer, max int) error {
	for _, part := range s.split(max) {
		if err := part.streamFrame(w); err != nil {
			return err
		}
	}
	return nil
}

// Block data of at least streamData bytes is written from the block by
// streamFrame; smaller data is gathered into writes of about streamBuffer
// bytes, so many small blocks do not each cost a Write.
const (
	streamData   = 16 << 10
	streamBuffer = 64 << 10
)

// streamFrame writes the message as one frame: the encoding between large
// block data from a buffer, and each large block's data as it is.
func (s Sized) streamFrame(w io.Writer) error {
	if err := s.check(); err != nil {
		return err
	}
	var werr error
	flush := func(b []byte) {
		if werr == nil && len(b) > 0 {
			_, werr = w.Write(b)
		}
	}
	gather := func(b, data []byte) []byte {
		if len(data) < streamData {
			if b = append(b, data...); len(b) < streamBuffer {
				return b
			}
			data = nil
		}
		flush(b)
		flush(data)
		return b[:0]
	}
	gathered := protowire.SizeVarint(uint64(s.n)) + s.n
	for _, b := range s.m.Blocks {
		if len(b.Data) >= streamData {
			gathered -= len(b.Data)
		}
	}
	buf := protowire.AppendVarint(make([]byte, 0, min(gathered, streamBuffer+streamData)), uint64(s.n))
	flush(s.m.appendBody(buf, s.v, s.wl, gather))
	return werr
}

// check fails as Marshal does.
func (s Sized) check() error {
	if err := s.m.check(s.v); err != nil {
		return err
	}
	if s.n > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, s.n, MaxMessageSize)
	}
	return nil
}

// writeFrame writes the message as one frame, as WriteTo does.
func (s Sized) writeFrame(w io.Writer) error {
	if err := s.check(); err != nil {
		return err
	}
	buf := make([]byte, 0, protowire.SizeVarint(uint64(s.n))+s.n)
	buf = protowire.AppendVarint(buf, uint64(s.n))
	buf = s.m.appendBody(buf, s.v, s.wl, appendData)
	_, err := w.Write(buf)
	return err
}

// ReadFrom reads one frame from r and decodes it. A frame longer than max
// bytes (MaxMessageSize if max <= 0) fails with ErrTooLarge before its body
// is allocated or read. A length prefix that is not a minimal varint of at
// most 9 bytes fails with ErrMalformed. It returns io.EOF if r ends before
// the frame starts and io.ErrUnexpectedEOF if it ends inside the frame.
func ReadFrom(r *bufio.Reader, max int) (*Message, error) {
	if max <= 0 {
		max = MaxMessageSize
	}
	n, err := varint.ReadUvarint(r)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, err
	case errors.Is(err, varint.ErrOverflow) || errors.Is(err, varint.ErrNotMinimal):
		return nil, fmt.Errorf("%w: length prefix: %w", ErrMalformed, err)
	default:
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return Unmarshal(body)
}
