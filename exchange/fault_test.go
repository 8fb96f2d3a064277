package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testlog"
	"github.com/bsfs/bsfs/internal/testnode"
)

// smallDisk is a real blockstore on a disk with room for a given number of
// bytes of blocks: a Put beyond that fails as flatfs does when the disk is
// full. It is the one fault these tests inject; a full tmpfs is tested in
// blockstore and cmd/bsfs.
type smallDisk struct {
	*blockstore.Blockstore
	dir string

	mu   sync.Mutex
	room int // guarded by mu: bytes left
}

func (d *smallDisk) Put(ctx context.Context, b block.Block) error {
	d.mu.Lock()
	full := len(b.Data) > d.room
	if !full {
		d.room -= len(b.Data)
	}
	d.mu.Unlock()
	if full {
		err := &fs.PathError{Op: "write", Path: d.dir + "/.temp/temp-1", Err: syscall.ENOSPC}
		return fmt.Errorf("put %s: storing in %s: %s: %w", b.CID, d.dir, err.Op, err.Err)
	}
	return d.Blockstore.Put(ctx, b)
}

func (d *smallDisk) setRoom(n int) {
	d.mu.Lock()
	d.room = n
	d.mu.Unlock()
}

// newSmallDiskNode is a real node whose store has room for room bytes.
func newSmallDiskNode(t *testing.T, room int) (*testNode, *smallDisk) {
	t.Helper()
	var disk *smallDisk
	n := newNodeOn(t, exchange.Config{Logger: slog.New(slog.DiscardHandler)}, func(bs *blockstore.Blockstore, dir string) exchange.Blockstore {
		disk = &smallDisk{Blockstore: bs, dir: dir, room: room}
		return disk
	})
	return n, disk
}

// A block that arrives but cannot be stored fails its waiters at once with
// the store's error, is counted, and its want is cancelled on both sides;
// once there is room again the same fetch succeeds.
func TestStoreFailureFailsWaiters(t *testing.T) {
	const size = 50_000
	server := newNode(t)
	client, disk := newSmallDiskNode(t, 2*size)
	testnode.Connect(t, client.host, server.host)
	var blks []block.Block
	for range 6 {
		blks = append(blks, put(t, server, rawV1, blocktest.RandomBytes(t, size)))
	}
	// Asked under CIDv0 (a dag-pb CID over the same hash): the error names
	// the CID the caller asked for.
	v0 := cid.NewCidV0(blks[0].CID.Hash())

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Room for two: two blocks arrive, then the stream ends early.
	st, err := client.ex.GetBlocks(ctx, []cid.Cid{blks[1].CID, blks[2].CID, blks[3].CID, blks[4].CID})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range st.C() {
		got++
	}
	if ctx.Err() != nil {
		t.Fatalf("GetBlocks waited until its context ended: %v", ctx.Err())
	}
	if got >= 4 {
		t.Fatalf("GetBlocks delivered all %d blocks on a disk with room for 2", got)
	}
	// The stream says why it stopped: the store's error, naming a CID it
	// asked for.
	if err := st.Err(); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "get block ") || !strings.Contains(err.Error(), disk.dir) {
		t.Fatalf("GetBlocks on a full disk ended with %v, want the store's ENOSPC", err)
	}

	for name, get := range map[string]func(context.Context, cid.Cid) (block.Block, error){
		"exchange": client.ex.GetBlock,
		"session":  client.ex.NewSession(ctx).GetBlock,
	} {
		_, err = get(ctx, v0)
		if err == nil {
			t.Fatalf("%s: GetBlock on a full disk succeeded", name)
		}
		if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: GetBlock on a full disk: %v, want ENOSPC at once", name, err)
		}
		for _, want := range []string{"get block " + v0.String(), disk.dir, "no space left on device"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not name %q", name, err, want)
			}
		}
	}

	stats := client.ex.Stats()
	if stats.StoreErrors < 3 || stats.InvalidBlocks != 0 {
		t.Errorf("StoreErrors %d, InvalidBlocks %d; want at least 3 and 0", stats.StoreErrors, stats.InvalidBlocks)
	}
	if has, _ := client.bs.Has(ctx, blks[0].CID); has {
		t.Error("a block the disk had no room for is stored")
	}
	poll.Until(t, 10*time.Second, "no want left on either side", func() bool {
		return len(client.ex.Wantlist()) == 0 && len(server.ex.Engine().WantlistFor(client.host.ID())) == 0
	})

	// No failure is remembered: with room again the same fetches succeed.
	disk.setRoom(1 << 30)
	checkFetchesSucceed(t, ctx, client, blks, v0)
}

// checkFetchesSucceed checks that client fetches blks[0] under v0 and
// then the others, and stores them all.
func checkFetchesSucceed(t *testing.T, ctx context.Context, client *testNode, blks []block.Block, v0 cid.Cid) {
	t.Helper()
	b, err := client.ex.GetBlock(ctx, v0)
	if err != nil {
		t.Fatalf("GetBlock once there is room: %v", err)
	}
	if !b.CID.Equals(v0) || !bytes.Equal(b.Data, blks[0].Data) {
		t.Fatalf("GetBlock once there is room: %s, want %s", b.CID, v0)
	}
	st, err := client.ex.GetBlocks(ctx, []cid.Cid{blks[1].CID, blks[2].CID, blks[3].CID, blks[4].CID, blks[5].CID})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range st.C() {
		got++
	}
	if got != 5 {
		t.Fatalf("GetBlocks once there is room delivered %d of 5 (context: %v)", got, ctx.Err())
	}
	for _, b := range blks {
		if _, err := client.bs.Get(ctx, b.CID); err != nil {
			t.Errorf("after the fetch: %v", err)
		}
	}
}

// slowDisk is a real blockstore whose reads take until the caller's context
// ends, as a disk that stalls does.
type slowDisk struct {
	*blockstore.Blockstore
}

func (d slowDisk) Get(ctx context.Context, c cid.Cid) (block.Block, error) {
	<-ctx.Done()
	return block.Block{}, ctx.Err()
}

// A fetch whose caller leaves during the local reads neither warns that the
// read failed nor asks peers for the blocks.
func TestCallerGoneDuringLocalRead(t *testing.T) {
	server := newNode(t)
	var logged testlog.Buffer
	client := newNodeOn(t, exchange.Config{Logger: slog.New(slog.NewTextHandler(&logged, nil))}, func(bs *blockstore.Blockstore, _ string) exchange.Blockstore {
		return slowDisk{bs}
	})
	testnode.Connect(t, client.host, server.host)
	rec := testnode.RecordWants(t, client.host)
	var cids []cid.Cid
	for range 3 {
		cids = append(cids, put(t, server, rawV1, blocktest.RandomBytes(t, 1000)).CID)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	st, err := client.ex.GetBlocks(ctx, cids)
	if err != nil {
		t.Fatal(err)
	}
	for b := range st.C() {
		t.Errorf("received %s from a fetch whose caller left", b.CID)
	}
	if err := st.Err(); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "get block "+cids[0].String()) {
		t.Errorf("a fetch whose caller left ended with %v, want the context's error naming the first CID", err)
	}
	// Anything sent would have been sent before the channel closed, and has
	// reached the recorder once its sync has.
	rec.Sync(t, client.host)
	if out := logged.String(); strings.Contains(out, "WARN") || strings.Contains(out, "ERROR") {
		t.Errorf("log of a fetch whose caller left:\n%s", out)
	}
	for _, c := range cids {
		if rec.Wanted(c) {
			t.Errorf("the client asked its peers for %s, which nobody waited for", c)
		}
	}
}
