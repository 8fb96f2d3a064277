package fs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/session"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/testnode"
)

// TestConcurrentReaders has fifty readers open and read at once, through
// the client's mount, a file only the server has: all get the file's bytes,
// and every block crosses the wire once.
func TestConcurrentReaders(t *testing.T) {
	const readers = 50
	leaves := 40
	if raceEnabled {
		leaves = 12
	}
	// The client's sessions never time out: a want-block asked again of a
	// slow server (a loaded machine) may rightly cost a duplicate, which
	// is not what this test is about.
	patient := session.Config{BlockTimeout: time.Hour, SilenceTimeout: time.Hour}
	server, client := newNode(t), newNodeWith(t, exchange.Config{Session: patient})
	data := blocktest.RandomBytes(t, leaves*256<<10)
	f := buildFile(t, data, []int{256 << 10}, 174)
	server.put(t, f.blocks...)
	testnode.Connect(t, server.host, client.host)
	dir := mount(t, client.ex, bsfs.Config{UnixFS: unixfsConfig(client)})
	path := filepath.Join(dir, f.root.CID.String())

	// Half the readers read from the start, the others from a leaf of
	// their own, around to it: the same blocks are wanted at once through
	// many handles, each with its own prefetch.
	start := make(chan struct{})
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			<-start
			from := int64(0)
			if i%2 == 1 {
				from = int64(i/2%leaves) * 256 << 10
			}
			got, err := readAround(path, from, len(data))
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("reader %d from %d: %d bytes, %v; want the file's %d bytes", i, from, len(got), err, len(data))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	want := uint64(len(f.blocks))
	cs, ss := client.ex.Stats(), server.ex.Stats()
	t.Logf("%d readers of %d blocks: client received %d (%d duplicates), server sent %d in %d messages",
		readers, want, cs.BlocksReceived, cs.DupBlksReceived, ss.BlocksSent, ss.MessagesSent)
	if cs.BlocksReceived != want || cs.DupBlksReceived != 0 || cs.UnwantedBlocks != 0 {
		t.Errorf("client received %d blocks, %d duplicates, %d unwanted; want %d, 0, 0", cs.BlocksReceived, cs.DupBlksReceived, cs.UnwantedBlocks, want)
	}
	if ss.BlocksSent != want {
		t.Errorf("server sent %d blocks, want %d", ss.BlocksSent, want)
	}
	client.waitWantlistEmpty(t)
	if l, ok := server.ex.Engine().Ledger(client.host.ID()); !ok || l.BlocksSent != want {
		t.Errorf("server's ledger of the client: %+v (%v); want %d blocks sent", l, ok, want)
	}
}

// readAround reads the size bytes of path from offset from to the end, then
// from the start to from, and returns them in file order.
func readAround(path string, from int64, size int) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	got := make([]byte, size)
	if _, err := fh.ReadAt(got[from:], from); err != nil {
		return nil, err
	}
	if _, err := fh.ReadAt(got[:from], 0); err != nil {
		return nil, err
	}
	return got, nil
}
