//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/storetest"
	repopkg "github.com/bsfs/bsfs/repo"
)

// verifyStore opens the flatfs store in dir (read-only: it leaves .temp as
// it is), reads back every block it lists, which checks each against its
// key, and returns their CIDs.
func verifyStore(t *testing.T, dir string) []cid.Cid {
	t.Helper()
	bs, err := blockstore.Open(dir, blockstore.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	keys, err := bs.AllKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for h := range keys {
		c := cid.NewCidV1(cid.Raw, h)
		if _, err := bs.Get(ctx, c); err != nil {
			t.Errorf("stored block does not verify: %v", err)
		}
		out = append(out, c)
	}
	if ctx.Err() != nil {
		t.Fatalf("listing %s: %v", dir, ctx.Err())
	}
	return out
}

// statOf returns the exchange counters of the daemon on repo.
func statOf(t *testing.T, repo string) exchange.Stats {
	t.Helper()
	c := api.NewClient(repopkg.APISocketPath(repo))
	defer c.Close()
	s, err := c.Stat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 9, case 12: a client whose blocks directory is a full disk. The
// fetch fails at once with the disk's error and the store's path, no block
// is half written, the client still serves what it has, and once the disk
// has room the same fetch succeeds.
func TestFullDisk(t *testing.T) {
	repoA, repoB, repoC := t.TempDir(), t.TempDir(), t.TempDir()
	blocksB := filepath.Join(repoB, "blocks")
	mounttest.Tmpfs(t, blocksB, "2m")
	a := startDaemon(t, repoA)
	b := startDaemon(t, repoB)
	path, data := randomFile(t, 8<<20)
	root := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path))
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))

	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	msg := fails(t, repoB, "", "get", root, "-o", out)
	t.Logf("get failed after %v: %s", time.Since(start).Round(time.Millisecond), msg)
	for _, want := range []string{"no space left on device", "storing in " + blocksB} {
		if !strings.Contains(msg, want) {
			t.Errorf("get on a full disk printed %q, want it to say %q", msg, want)
		}
	}
	if st := statOf(t, repoB); st.StoreErrors == 0 {
		t.Errorf("stat after the failure: %+v, want StoreErrors > 0", st)
	}

	// No block half written: .temp empties, every stored block verifies.
	storetest.WaitTempEmpty(t, blocksB)
	have := verifyStore(t, blocksB)
	if len(have) == 0 {
		t.Fatal("nothing stored before the disk filled")
	}

	// B still serves what it has, to a peer that knows only B.
	c := startDaemon(t, repoC)
	ok(t, repoC, "", "swarm", "connect", b.tcpAddr(t))
	mine := ok(t, repoB, "", "block", "get", have[0].String())
	if got := ok(t, repoC, "", "block", "get", "--timeout", "30s", have[0].String()); got != mine {
		t.Errorf("block get from B: %d bytes, want the %d B has", len(got), len(mine))
	}

	// Room again: the same fetch succeeds.
	if err := syscall.Mount("tmpfs", blocksB, "tmpfs", syscall.MS_REMOUNT, "size=32m"); err != nil {
		t.Fatalf("growing the tmpfs: %v", err)
	}
	os.RemoveAll(out)
	ok(t, repoB, "", "get", root, "-o", out)
	if fetched, err := os.ReadFile(out); err != nil || !bytes.Equal(fetched, data) {
		t.Errorf("get once there is room: %d bytes (%v), want the %d added", len(fetched), err, len(data))
	}
	storetest.WaitTempEmpty(t, blocksB)
	verifyStore(t, blocksB)
	c.stopClean(t)
	b.stopClean(t)
	a.stopClean(t)
}

// Issue 9, case 10: a daemon killed (SIGKILL) in the middle of a fetch
// leaves a store whose every block verifies and no temporary file once
// reopened; the lock dies with it; restarted, it fetches only the blocks
// it did not have yet.
func TestCrashMidFetch(t *testing.T) {
	repoA, repoB := t.TempDir(), t.TempDir()
	blocksB := filepath.Join(repoB, "blocks")
	a := startDaemon(t, repoA)
	path, data := randomFile(t, crashFileSize)
	want := sha256.Sum256(data)
	data = nil // up to 256 MiB, not needed any more
	root := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path))
	total := countBlocks(t, filepath.Join(repoA, "blocks"))

	b := startDaemon(t, repoB)
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))
	catDone := startCat(t, repoB, root)

	// Kill B once it holds a part of the file, bounded in time.
	poll.UntilNil(t, commandTimeout, func() error {
		if n := countBlocks(t, blocksB); n < total/4 {
			return fmt.Errorf("B stored %d of %d blocks in %v", n, total, commandTimeout)
		}
		return nil
	})
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	select {
	case err := <-catDone:
		catDone <- err
		if err == nil {
			t.Error("cat through a daemon killed mid-fetch exited 0")
		}
	case <-time.After(stopTimeout):
		t.Fatalf("cat still running %v after its daemon was killed", stopTimeout)
	}
	leftovers, _ := os.ReadDir(filepath.Join(blocksB, ".temp"))

	// The lock died with the process: the repository opens, and opening
	// its store clears what the crash left in .temp.
	r, err := repopkg.Open(repoB)
	if err != nil {
		t.Fatalf("opening the repository of the killed daemon: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if left, err := os.ReadDir(filepath.Join(blocksB, ".temp")); err != nil || len(left) != 0 {
		t.Errorf(".temp after reopening holds %v (%v), want nothing", left, err)
	}
	stored := len(verifyStore(t, blocksB))
	t.Logf("killed with %d of %d blocks stored, %d temporary files left", stored, total, len(leftovers))
	if stored == 0 || stored >= total {
		t.Fatalf("%d of %d blocks stored at the kill: not in the middle of the fetch", stored, total)
	}

	// Restarted, B fetches the rest only.
	b = startDaemon(t, repoB)
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))
	if got := catSum(t, repoB, root); got != want {
		t.Fatal("cat after the restart: the bytes differ from the file added")
	}
	const slack = 2
	st := statOf(t, repoB)
	if missing := uint64(total - stored); st.BlocksReceived > missing+slack || st.BlocksReceived+slack < missing {
		t.Errorf("restarted B received %d blocks; %d were missing of %d", st.BlocksReceived, missing, total)
	}
	if n := len(verifyStore(t, blocksB)); n != total {
		t.Errorf("B stores %d blocks after the fetch, want %d", n, total)
	}
	b.stopClean(t)
	a.stopClean(t)
}

// startCat starts `bsfs cat root` on repo, discarding what it prints; its
// exit status arrives on the channel returned, and is put back by whoever
// reads it for the cleanup, which kills cat if it still runs.
func startCat(t *testing.T, repo, root string) chan error {
	t.Helper()
	cat := exec.Command(bsfsBin, "cat", root)
	cat.Env = append(os.Environ(), "BSFS_PATH="+repo)
	cat.Stdout = io.Discard
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	catDone := make(chan error, 1)
	go func() { catDone <- cat.Wait() }()
	t.Cleanup(func() {
		cat.Process.Kill()
		<-catDone
		catDone <- nil
	})
	return catDone
}

// catSum runs `bsfs cat root` on repo and returns the SHA-256 of what it
// writes.
func catSum(t *testing.T, repo, root string) [sha256.Size]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bsfsBin, "cat", root)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repo)
	h := sha256.New()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = h, &stderr
	if err := cmd.Run(); err != nil {
		if exitErr, isExit := errors.AsType[*exec.ExitError](err); isExit || ctx.Err() != nil {
			t.Fatalf("cat %s: %v (%v); stderr: %s", root, exitErr, ctx.Err(), stderr.String())
		}
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}
