package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/internal/atomicfile"
)

// rootsFile lists the roots this node added, one CID a line, oldest first.
const rootsFile = "roots"

// AddRoot records c in the list of roots this node added. The list only
// grows, by appending one whole line in one write followed by an fsync, so
// concurrent calls never lose each other's root and a crash leaves at most
// an incomplete last line, which Roots ignores. A root already listed is
// not added again.
func (r *Repo) AddRoot(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("add root: undefined CID")
	}
	roots, err := r.Roots()
	if err != nil {
		return err
	}
	for _, have := range roots {
		if have.Equals(c) {
			return nil
		}
	}
	path := filepath.Join(r.Path, rootsFile)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("add root: %w", err)
	}
	// A line left incomplete by a crash gets its end, so that ours starts
	// a line of its own.
	line := []byte(c.String() + "\n")
	if tail, err := lastByte(path); err == nil && tail != '\n' {
		line = append([]byte{'\n'}, line...)
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && errors.Is(statErr, fs.ErrNotExist) {
		err = atomicfile.SyncDir(r.Path)
	}
	if err != nil {
		return fmt.Errorf("add root: %w", err)
	}
	return nil
}

// lastByte returns the last byte of the file at path, or an error for an
// empty file.
func lastByte(path string) (byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 0, errors.New("empty")
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], fi.Size()-1); err != nil {
		return 0, err
	}
	return b[0], nil
}

// Roots returns the roots this node added, oldest first, each once. Lines
// that are not a CID (an incomplete last line after a crash) are skipped.
func (r *Repo) Roots() ([]cid.Cid, error) {
	data, err := os.ReadFile(filepath.Join(r.Path, rootsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("roots: %w", err)
	}
	var out []cid.Cid
	seen := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		c, err := cid.Decode(string(bytes.TrimSpace(sc.Bytes())))
		if err != nil || seen[c.KeyString()] {
			continue
		}
		seen[c.KeyString()] = true
		out = append(out, c)
	}
	return out, sc.Err()
}
