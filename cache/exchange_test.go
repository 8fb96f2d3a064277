package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/storetest"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/unixfs"
)

// newNode is a node on loopback whose exchange stores in st.
func newNode(t testing.TB, st exchange.Blockstore) *testnode.Node {
	t.Helper()
	return testnode.NewWrapped(t, exchange.Config{}, func(*blockstore.Blockstore, string) exchange.Blockstore { return st })
}

// A file four times the quota, read through unixfs over the exchange,
// reads back whole while the store stays within the quota plus the read's
// window, and a pinned file stays.
func TestReadLargerThanQuota(t *testing.T) {
	const (
		leaf     = 256 << 10
		quota    = 4 << 20
		window   = 8
		fileSize = 16 << 20
	)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	src := storetest.New(t)
	provider := newNode(t, src)
	data := blocktest.SeededBytes(fileSize, 40)
	root := addFile(t, src, data)

	bs := storetest.New(t)
	c := open(t, t.TempDir(), bs, quota)
	pinnedData := blocktest.SeededBytes(600<<10, 41)
	pinned := addFile(t, bs, pinnedData)
	if err := c.Pin(ctx, pinned, nil); err != nil {
		t.Fatal(err)
	}
	pinnedBytes := storeBytes(t, bs)
	fetcher := newNode(t, c)
	testnode.Connect(t, fetcher.Host, provider.Host)

	f, err := unixfs.New(c.Getter(fetcher.Ex), unixfs.Config{Window: window}).Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	limit := pinnedBytes + quota + (window+2)*leaf
	var got bytes.Buffer
	var peak int64
	buf := make([]byte, 1<<20)
	for off := int64(0); off <= fileSize; {
		n, err := f.ReadAt(ctx, buf, off)
		got.Write(buf[:n])
		off += int64(n)
		peak = max(peak, storeBytes(t, bs))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d of the file", got.Len(), fileSize)
	}
	if peak > limit {
		t.Fatalf("the store peaked at %d bytes, over the quota plus the window (%d)", peak, limit)
	}
	if final := storeBytes(t, bs); final >= fileSize/2 {
		t.Fatalf("the store holds %d bytes after the read: nothing was evicted", final)
	}
	checkFile(t, bs, pinned, pinnedData)
	if u := c.Usage(); u.Used > quota || u.Held != 0 {
		t.Fatalf("usage %+v after the read, want within %d bytes and nothing held", u, quota)
	}
	t.Logf("peak %d bytes in the store (pin %d, quota %d, window %d)", peak, pinnedBytes, quota, window*leaf)
}

// A Kubo repository's blocks/ directory, opened read-only under a union,
// answers Kubo's and bsfs's wants, and nothing is copied into our store.
func TestServeKuboBlocksReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	owner := kubotest.Start(t)
	data := blocktest.SeededBytes(3<<20+77, 50)
	root, err := owner.Add(ctx, data, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := blockstore.Open(owner.Path()+"/blocks", blockstore.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	own := storetest.New(t)
	c := open(t, t.TempDir(), Union{Own: own, Shared: shared}, 0)
	server := newNode(t, c)

	// bsfs fetches from the server (which is connected to nobody else).
	client := newNode(t, storetest.New(t))
	testnode.Connect(t, client.Host, server.Host)
	f, err := unixfs.New(client.Ex, unixfs.Config{}).Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data)+1)
	n, err := f.ReadAt(ctx, got, 0)
	f.Close()
	if !errors.Is(err, io.EOF) || !bytes.Equal(got[:n], data) {
		t.Fatalf("bsfs read %d bytes (%v), want the %d Kubo added", n, err, len(data))
	}

	// Kubo fetches from the server.
	kubo := kubotest.Start(t)
	kubo.Dial(ctx, t, server.Host)
	catted, err := kubo.Cat(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(catted, data) {
		t.Fatalf("Kubo read %d bytes, want the %d added", len(catted), len(data))
	}
	if b := storeBytes(t, own); b != 0 {
		t.Fatalf("our store holds %d bytes: blocks were copied", b)
	}
	if err := c.Put(ctx, rawBlocks(t, 1, 10, 51)[0]); err != nil {
		t.Fatalf("a fetched block is not stored in ours: %v", err)
	}
	if b := storeBytes(t, own); b != 10 {
		t.Fatalf("our store holds %d bytes, want the 10 put", b)
	}
}
