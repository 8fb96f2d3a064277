package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/testlog"
	repopkg "github.com/bsfs/bsfs/repo"
)

// TestIDOffline: without a daemon, id prints the peer ID and no address,
// since none is live, and says why on stderr.
func TestIDOffline(t *testing.T) {
	repo := t.TempDir()
	res := bsfs(t, repo, "", "id")
	if res.code != 0 {
		t.Fatalf("id: exit %d, stderr: %s", res.code, res.stderr)
	}
	out := lines(res.stdout)
	if len(out) != 1 {
		t.Fatalf("id without a daemon printed %q; want the peer ID alone", out)
	}
	if !strings.Contains(res.stderr, "no daemon runs") {
		t.Errorf("id without a daemon: stderr %q does not say that no daemon runs", res.stderr)
	}
}

// TestDaemonWaitsForCommand: a daemon started while a command holds the
// repository waits for it rather than failing.
func TestDaemonWaitsForCommand(t *testing.T) {
	repo := t.TempDir()
	held, err := repopkg.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	d := launchDaemon(t, repo)
	// Release the repository once the daemon says it waits for it.
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(d.stderr.String(), "waiting for another bsfs process") {
		select {
		case <-d.exited:
			t.Fatalf("daemon started while the repository was held exited (%v); stderr: %s", d.err, d.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not say it waits within %s; stderr: %s", readyTimeout, d.stderr)
		}
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.waitReady(); err != nil {
		t.Fatal(err)
	}
	if got := lines(ok(t, repo, "", "id")); !slices.Equal(got, append([]string{d.id}, d.addrs...)) {
		t.Errorf("id through the daemon printed %q; want %s then %q", got, d.id, d.addrs)
	}
	d.stopClean(t)
}

// TestDaemonLockWaitBounded: a daemon gives up on a repository held for
// longer than lockWait, with an error that names it and says what to do.
func TestDaemonLockWaitBounded(t *testing.T) {
	repo := t.TempDir()
	held, err := repopkg.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	start := time.Now()
	res := bsfs(t, repo, "", "daemon", "--listen", "/ip4/127.0.0.1/tcp/0")
	elapsed := time.Since(start)
	if res.code == 0 {
		t.Fatalf("daemon on a held repository exited 0; stdout: %s", res.stdout)
	}
	if elapsed < lockWait {
		t.Errorf("daemon gave up after %s; want it to wait %s", elapsed, lockWait)
	}
	errLines := lines(res.stderr)
	msg := ""
	if len(errLines) > 0 {
		msg = errLines[len(errLines)-1]
	}
	for _, want := range []string{"Error: ", held.Path, "in use by another bsfs process", "not released within", "stop that process"} {
		if !strings.Contains(msg, want) {
			t.Errorf("daemon's error %q does not say %q", msg, want)
		}
	}
	// Released, the repository is the daemon's.
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, repo).stopClean(t)
}

// TestDaemonStartsWhileIDPolls: a script polling `bsfs id` while a daemon
// starts, as one waiting for the daemon does, neither keeps the daemon
// from starting nor is told of an address the daemon does not listen on.
func TestDaemonStartsWhileIDPolls(t *testing.T) {
	const starts, pollers = 20, 2
	repo := t.TempDir()
	peerID := lines(ok(t, repo, "", "id"))[0]
	failed, waited := 0, 0
	for range starts {
		started, waitedForID := startWhileIDPolls(t, repo, peerID, pollers)
		if !started {
			failed++
		}
		if waitedForID {
			waited++
		}
	}
	t.Logf("%d of %d starts waited for an id to release the repository", waited, starts)
	if failed > 0 {
		t.Errorf("%d of %d daemon starts failed", failed, starts)
	}
}

// startWhileIDPolls starts a daemon on repo while pollers processes run
// `bsfs id` in turn, stops it, and checks what id printed. It reports
// whether the daemon started, and whether it waited for an id.
func startWhileIDPolls(t *testing.T, repo, peerID string, pollers int) (started, waited bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
		runErrs []error
		ran     = make(chan struct{}, 1024) // a token for each id that ended
	)
	stopPolling := func() { cancel(); wg.Wait() }
	defer stopPolling()
	for range pollers {
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := runBsfs(ctx, repo, "", "id")
				if ctx.Err() != nil {
					return // killed: what it printed tells nothing
				}
				mu.Lock()
				results = append(results, res)
				if err != nil {
					runErrs = append(runErrs, err)
				}
				mu.Unlock()
				select {
				case ran <- struct{}{}:
				default:
				}
			}
		})
	}
	// wait waits for n more ids to end.
	wait := func(n int) {
		t.Helper()
		timer := time.NewTimer(commandTimeout)
		defer timer.Stop()
		for range n {
			select {
			case <-ran:
			case <-timer.C:
				t.Fatalf("id did not end within %s", commandTimeout)
			}
		}
	}
	wait(1)
	d := launchDaemon(t, repo)
	startErr := d.waitReady()
	if startErr == nil {
		// Drain the tokens of ids that ended so far, then wait for one
		// that began once the daemon was ready.
		for len(ran) > 0 {
			<-ran
		}
		wait(pollers + 1)
	}
	stopPolling()
	if startErr != nil {
		t.Errorf("daemon started while id polls: %v", startErr)
	} else {
		d.stopClean(t)
	}

	for _, err := range runErrs {
		t.Errorf("id while the daemon starts: %v", err)
	}
	checkIDResults(t, results, peerID, d.addrs, startErr == nil)
	return startErr == nil, strings.Contains(d.stderr.String(), "waiting for another bsfs process")
}

// checkIDResults checks what the ids run while a daemon started printed:
// peerID, then none or the daemon's addresses addrs; all but one at most
// printed that, and if the daemon started some went through it.
func checkIDResults(t *testing.T, results []result, peerID string, addrs []string, started bool) {
	t.Helper()
	bad, online := 0, 0
	for _, res := range results {
		out := lines(res.stdout)
		good := res.code == 0 && len(out) > 0 && out[0] == peerID
		for _, a := range out[min(1, len(out)):] {
			good = good && slices.Contains(addrs, a)
		}
		if !good {
			if bad == 0 {
				t.Errorf("id while the daemon starts: exit %d, stdout %q, stderr %q; want %s, then none or the daemon's addresses %q", res.code, res.stdout, res.stderr, peerID, addrs)
			}
			bad++
		} else if len(out) > 1 {
			online++
		}
	}
	if bad > 1 {
		t.Errorf("%d of %d ids printed something else", bad, len(results))
	}
	if started && online == 0 {
		t.Errorf("none of %d ids went through the daemon", len(results))
	}
}

// TestMountWaitsForCommand: `bsfs mount` running its own node, started
// while a command holds the repository, waits for it and mounts, as the
// daemon does.
func TestMountWaitsForCommand(t *testing.T) {
	mounttest.RequireFUSE(t)
	repo := t.TempDir()
	data := []byte("mounted once the command let go, " + time.Now().String())
	c := strings.TrimSpace(ok(t, repo, string(data), "block", "put"))
	held, err := repopkg.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	dir := t.TempDir()
	cmd := exec.Command(bsfsBin, "mount", dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repo)
	stderr := &testlog.Buffer{}
	cmd.Stderr = stderr
	// Release the repository once the mount says it waits for it.
	released := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(readyTimeout)
		for !strings.Contains(stderr.String(), "waiting for another bsfs process") {
			if time.Now().After(deadline) {
				released <- fmt.Errorf("bsfs mount did not say it waits within %s; stderr: %s", readyTimeout, stderr)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		released <- held.Close()
	}()
	m := startMountCmd(t, repo, dir, cmd)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	readMount(t, filepath.Join(dir, c), data)
	stopMount(t, m, dir, syscall.SIGINT)
}
