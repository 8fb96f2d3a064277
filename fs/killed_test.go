package fs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"go.uber.org/goleak"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testnode"
)

// waitNoNewGoroutines fails unless every goroutine but those ignored
// (see goleak.IgnoreCurrent) has ended within waitTimeout.
func waitNoNewGoroutines(t *testing.T, ignored goleak.Option) {
	t.Helper()
	poll.UntilNil(t, waitTimeout, func() error {
		// go-fuse starts more request readers as requests come in at
		// once and ends the extra ones lazily; they belong to the mount,
		// which is still up.
		if err := goleak.Find(ignored, goleak.IgnoreAnyFunction("github.com/hanwen/go-fuse/v2/fuse.(*fuseFD).readRequest")); err != nil {
			return fmt.Errorf("goroutines left after the reader was killed: %w", err)
		}
		return nil
	})
}

// waitPeerWants fails unless the CIDs server's engine holds as p's wants
// satisfy ok within waitTimeout.
func waitPeerWants(t *testing.T, server, p *testNode, what string, ok func([]cid.Cid) bool) {
	t.Helper()
	poll.UntilNil(t, waitTimeout, func() error {
		var cs []cid.Cid
		for _, e := range server.ex.Engine().WantlistFor(p.host.ID()) {
			cs = append(cs, e.CID)
		}
		if ok(cs) {
			return nil
		}
		return fmt.Errorf("the server's ledger of the client: wants %v, want %s", cs, what)
	})
}

// TestReaderKilled kills (SIGKILL) a cat blocked reading a leaf that the
// connected server lacks: cat dies at once, the read's context ends, the
// client's want leaves its wantlist and the server's ledger (CANCEL on the
// wire), the file's session ends, and no goroutine is left behind.
func TestReaderKilled(t *testing.T) {
	server, client := newNode(t), newNode(t)
	testnode.Connect(t, server.host, client.host)
	dir := mount(t, client.ex, bsfs.Config{UnixFS: unixfsConfig(client)})

	// The baseline: the mount up and a file read through it from the
	// server, so that the connection's streams and go-fuse's readers are
	// there already.
	warm := buildFile(t, blocktest.RandomBytes(t, 600<<10), []int{256 << 10}, 174)
	server.put(t, warm.blocks...)
	if out, err := exec.Command("cat", filepath.Join(dir, warm.root.CID.String())).Output(); err != nil || len(out) != 600<<10 {
		t.Fatalf("cat of a file the server has: %d bytes, %v", len(out), err)
	}
	client.waitWantlistEmpty(t)
	baseline := goleak.IgnoreCurrent()
	sessions := client.ex.SessionCount()

	f := buildFile(t, blocktest.RandomBytes(t, 1<<20), []int{256 << 10}, 174)
	server.put(t, f.root, f.leaves[0], f.leaves[1])
	missing := f.leaves[2].CID
	cmd, done := startReader(t, "cat", filepath.Join(dir, f.root.CID.String()))
	client.waitWanted(t, missing)
	waitPeerWants(t, server, client, fmt.Sprintf("to hold %s", missing), func(cs []cid.Cid) bool {
		return slices.ContainsFunc(cs, missing.Equals)
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
	case <-time.After(waitTimeout):
		t.Fatalf("cat still blocked %s after SIGKILL", waitTimeout)
	}

	client.waitWantlistEmpty(t)
	waitPeerWants(t, server, client, "none", func(cs []cid.Cid) bool { return len(cs) == 0 })
	poll.UntilNil(t, waitTimeout, func() error {
		if n := client.ex.SessionCount(); n > sessions {
			return fmt.Errorf("%d sessions %s after the reader was killed, %d before", n, waitTimeout, sessions)
		}
		return nil
	})
	waitNoNewGoroutines(t, baseline)

	// The mount still serves the file once the leaf is there.
	server.put(t, f.leaves[2], f.leaves[3])
	if got, err := os.ReadFile(filepath.Join(dir, f.root.CID.String())); err != nil || len(got) != 1<<20 {
		t.Errorf("read after the killed one: %d bytes, %v", len(got), err)
	}
}
