package fs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/blockstore"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/testnode"
)

// corruptLeafSize is the leaf size of the files these tests corrupt: the
// importers' chunk size.
const corruptLeafSize = 256 << 10

// blockFile returns the file holding c in n's flatfs directory, laid out as
// Kubo lays it out: sharded by the next-to-last two characters of the key.
func blockFile(t *testing.T, n *testNode, c cid.Cid) string {
	t.Helper()
	key := blockstore.Key(c.Hash())
	path := filepath.Join(n.dir, key[len(key)-3:len(key)-1], key+".data")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("block file of %s: %v", c, err)
	}
	return path
}

// corruption damages a block file as a crash or a failing disk may: data
// is what the file holds now.
type corruption struct {
	name  string
	apply func(path string, data []byte) error
}

var corruptions = []corruption{
	{"flipped bit", func(path string, data []byte) error { return os.WriteFile(path, flipBit(data, len(data)/2), 0o644) }},
	{"truncated", func(path string, data []byte) error { return os.Truncate(path, int64(len(data)/2)) }},
	{"empty", func(path string, data []byte) error { return os.Truncate(path, 0) }},
}

// flipBit returns a copy of data with one bit of byte i flipped.
func flipBit(data []byte, i int) []byte {
	bad := bytes.Clone(data)
	bad[i] ^= 0x10
	return bad
}

// readUntilError reads path through a fresh descriptor until an error and
// returns the bytes read and the error (nil at the end of the file).
func readUntilError(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		k, err := fh.Read(buf)
		got = append(got, buf[:k]...)
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// checkEIO reads path, which holds data but cannot be read whole: the read
// must fail with EIO, after returning only bytes of data from the start.
func checkEIO(t *testing.T, path string, data []byte) {
	t.Helper()
	got, err := readUntilError(path)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read of a file with a leaf nobody can serve: %d bytes, %v; want EIO", len(got), err)
	}
	if !bytes.Equal(got, data[:min(len(got), len(data))]) || len(got) > len(data) {
		t.Errorf("read of a file with a leaf nobody can serve returned %d bytes that are not the file's", len(got))
	}
}

// TestCorruptBlockRefetched corrupts a leaf of a file the client stores, in
// three ways a crash can: a read through the client's mount detects it,
// fetches the leaf again from the peer, returns the right bytes and leaves
// the repaired block on disk.
func TestCorruptBlockRefetched(t *testing.T) {
	server, client := newNode(t), newNode(t)
	testnode.Connect(t, server.host, client.host)
	dir := mount(t, client.ex, bsfs.Config{UnixFS: unixfsConfig(client)})
	for _, cr := range corruptions {
		t.Run(cr.name, func(t *testing.T) {
			// A fresh file: no page of it is in the kernel's cache.
			data := blocktest.RandomBytes(t, 4*corruptLeafSize+1000)
			f := buildFile(t, data, []int{corruptLeafSize}, 174)
			server.put(t, f.blocks...)
			client.put(t, f.blocks...)
			bad := f.leaves[1]
			path := blockFile(t, client, bad.CID)
			if err := cr.apply(path, bad.Data); err != nil {
				t.Fatal(err)
			}
			before, mismatches := client.ex.Stats(), client.bs.Stats().HashMismatches

			got, err := os.ReadFile(filepath.Join(dir, f.root.CID.String()))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read through the mount: %d bytes, %v; want the file's %d", len(got), err, len(data))
			}
			if onDisk, err := os.ReadFile(path); err != nil || !bytes.Equal(onDisk, bad.Data) {
				t.Errorf("block file after the read: %d bytes, %v; want the leaf's %d bytes", len(onDisk), err, len(bad.Data))
			}
			if _, err := client.bs.Get(context.Background(), bad.CID); err != nil {
				t.Errorf("the repaired block does not verify: %v", err)
			}
			after := client.ex.Stats()
			if n := after.BlocksReceived - before.BlocksReceived; n != 1 {
				t.Errorf("the read received %d blocks from the peer, want 1: the corrupt leaf", n)
			}
			if after.DupBlksReceived != before.DupBlksReceived || after.InvalidBlocks != before.InvalidBlocks {
				t.Errorf("duplicate or invalid blocks received: %+v, before %+v", after, before)
			}
			if client.bs.Stats().HashMismatches == mismatches {
				t.Error("the store counted no hash mismatch: was the corrupt file read at all?")
			}
		})
	}
}

// TestCorruptBlockNoPeer corrupts a leaf that no connected peer has: reads
// of it through the mount fail with EIO once the read time-out passes,
// never with wrong bytes, and succeed once a peer has the leaf.
func TestCorruptBlockNoPeer(t *testing.T) {
	server, client := newNode(t), newNode(t)
	testnode.Connect(t, server.host, client.host) // connected, but without the leaf
	const timeout = 300 * time.Millisecond
	var log testLog
	dir := mount(t, client.ex, bsfs.Config{ReadTimeout: timeout, UnixFS: unixfsConfig(client), Logger: log.logger()})
	data := blocktest.RandomBytes(t, 4*corruptLeafSize+1000)
	f := buildFile(t, data, []int{corruptLeafSize}, 174)
	client.put(t, f.blocks...)
	const badLeaf = 2
	bad := f.leaves[badLeaf]
	path := blockFile(t, client, bad.CID)
	const flipped = 1000 // the byte of the leaf whose bit is flipped
	if err := os.WriteFile(path, flipBit(bad.Data, flipped), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, f.root.CID.String())

	// A pread of the last leaf, after the corrupt one: the kernel's
	// read-ahead, which runs forward, does not reach the corrupt leaf.
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	last := int64(len(f.leaves)-1) * corruptLeafSize
	buf := make([]byte, len(data)-int(last))
	if k, err := fh.ReadAt(buf, last); (err != nil && !errors.Is(err, io.EOF)) || !bytes.Equal(buf[:k], data[last:]) {
		t.Errorf("pread of the last leaf: %d bytes, %v; want its %d bytes", k, err, len(buf))
	}
	// A pread of just the corrupted byte: one read time-out, however many
	// requests the kernel sends for it (its read-ahead, then the page).
	off := int64(badLeaf*corruptLeafSize + flipped)
	buf = make([]byte, 1)
	start := time.Now()
	k, err := fh.ReadAt(buf, off)
	elapsed := time.Since(start)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("pread of the corrupted byte: %d bytes (%#x, the file has %#x), %v; want EIO", k, buf[:k], data[off], err)
	}
	t.Logf("EIO after %s with a read time-out of %s", elapsed.Round(time.Millisecond), timeout)
	if elapsed > waitTimeout {
		t.Errorf("pread of the corrupted byte took %s, read time-out %s", elapsed, timeout)
	}
	if n := strings.Count(log.buf.String(), "read time-out"); n != 1 {
		t.Errorf("the pread waited for %d read time-outs, want 1:\n%s", n, log.buf.String())
	}

	// A whole read, through a fresh descriptor.
	checkEIO(t, file, data)
	client.waitWantlistEmpty(t)
	if onDisk, err := os.ReadFile(path); err != nil || !bytes.Equal(onDisk, flipBit(bad.Data, flipped)) {
		t.Errorf("the corrupt block file changed without a good copy to replace it: %d bytes, %v", len(onDisk), err)
	}
	if !strings.Contains(log.buf.String(), f.root.CID.String()) {
		t.Errorf("the failed reads are not logged with the file's CID:\n%s", log.buf.String())
	}

	// Once a peer has the leaf, the same read succeeds and repairs it.
	server.put(t, bad)
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read once a peer has the leaf: %d bytes, %v", len(got), err)
	}
	if onDisk, err := os.ReadFile(path); err != nil || !bytes.Equal(onDisk, bad.Data) {
		t.Errorf("block file after the read: %d bytes, %v; want the leaf's %d bytes", len(onDisk), err, len(bad.Data))
	}
}

// TestCorruptBlockNotServed corrupts the only copy of a leaf, on the
// server: the server reads it for the client, finds it corrupt and does not
// send it, so the client's read fails with EIO and receives no wrong bytes.
func TestCorruptBlockNotServed(t *testing.T) {
	server, client := newNode(t), newNode(t)
	testnode.Connect(t, server.host, client.host)
	var log testLog
	dir := mount(t, client.ex, bsfs.Config{ReadTimeout: 2 * time.Second, UnixFS: unixfsConfig(client), Logger: log.logger()})
	data := blocktest.RandomBytes(t, 4*corruptLeafSize+1000)
	f := buildFile(t, data, []int{corruptLeafSize}, 174)
	server.put(t, f.blocks...)
	bad := f.leaves[1]
	for _, b := range f.blocks {
		if !b.CID.Equals(bad.CID) {
			client.put(t, b)
		}
	}
	path := blockFile(t, server, bad.CID)
	if err := os.WriteFile(path, flipBit(bad.Data, 7), 0o644); err != nil {
		t.Fatal(err)
	}

	checkEIO(t, filepath.Join(dir, f.root.CID.String()), data)
	if n := strings.Count(log.buf.String(), "read time-out"); n != 1 {
		t.Errorf("the read waited for %d read time-outs, want 1:\n%s", n, log.buf.String())
	}
	if n := server.bs.Stats().HashMismatches; n == 0 {
		t.Error("the server never read its corrupt copy: the client did not ask for it")
	}
	if s := server.ex.Stats(); s.BlocksSent != 0 {
		t.Errorf("the server sent %d blocks, want none", s.BlocksSent)
	}
	s := client.ex.Stats()
	if s.BlocksReceived != 0 || s.DupBlksReceived != 0 || s.UnwantedBlocks != 0 || s.InvalidBlocks != 0 {
		t.Errorf("the client received blocks: %+v", s)
	}
	if has, err := client.bs.Has(context.Background(), bad.CID); err != nil || has {
		t.Errorf("the client stores the leaf the server could not serve: %v, %v", has, err)
	}
	client.waitWantlistEmpty(t)
}
