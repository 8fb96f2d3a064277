package api

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// readCIDList reads CIDs, one a line, at most maxBlocksGet of them.
func readCIDList(r io.Reader) ([]cid.Cid, error) {
	var out []cid.Cid
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if len(out) == maxBlocksGet {
			return nil, fmt.Errorf("more than %d CIDs", maxBlocksGet)
		}
		c, err := cid.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("invalid CID %q: %w", line, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// writeFrame writes b as one frame.
func writeFrame(w io.Writer, b block.Block) error {
	hdr := binary.AppendUvarint(nil, uint64(b.CID.ByteLen()))
	hdr = append(hdr, b.CID.Bytes()...)
	hdr = binary.AppendUvarint(hdr, uint64(len(b.Data)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(b.Data)
	return err
}

// readFrame reads one frame: a CID and at most block.MaxSize bytes, not
// checked against each other. A stream that ends between frames is io.EOF.
func readFrame(r *bufio.Reader) (block.Block, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return block.Block{}, io.EOF
		}
		return block.Block{}, fmt.Errorf("block frame: %w", err)
	}
	if n == 0 || n > block.MaxCIDSize {
		return block.Block{}, fmt.Errorf("block frame: CID of %d bytes", n)
	}
	cb := make([]byte, n)
	if _, err := io.ReadFull(r, cb); err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", io.ErrUnexpectedEOF)
	}
	c, err := cid.Cast(cb)
	if err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", err)
	}
	m, err := binary.ReadUvarint(r)
	if err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", io.ErrUnexpectedEOF)
	}
	if m > block.MaxSize {
		return block.Block{}, fmt.Errorf("%w: frame of %d bytes", block.ErrTooLarge, m)
	}
	data := make([]byte, m)
	if _, err := io.ReadFull(r, data); err != nil {
		return block.Block{}, fmt.Errorf("block frame: %w", io.ErrUnexpectedEOF)
	}
	return block.Block{CID: c, Data: data}, nil
}
