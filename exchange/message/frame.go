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
	if err := m.check(v); err != nil {
		return err
	}
	n, wl := m.sizes(v)
	if n > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, MaxMessageSize)
	}
	buf := make([]byte, 0, protowire.SizeVarint(uint64(n))+n)
	buf = protowire.AppendVarint(buf, uint64(n))
	buf = m.appendBody(buf, v, wl)
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
