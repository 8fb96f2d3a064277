package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
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

	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testlog"
	repopkg "github.com/bsfs/bsfs/repo"
)

// startMount runs `bsfs mount dir args...` on repoPath and waits until it
// has mounted. The test's cleanup kills it if the test did not stop it.
func startMount(t *testing.T, repoPath, dir string, args ...string) *daemon {
	t.Helper()
	mounttest.RequireFUSE(t)
	cmd := exec.Command(bsfsBin, append([]string{"mount", dir}, args...)...)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repoPath)
	return startMountCmd(t, repoPath, dir, cmd)
}

// startMountCmd is startMount with the command to start, `bsfs mount dir`
// set up by the caller. A Stderr set on cmd gets the mount's stderr too.
func startMountCmd(t *testing.T, repoPath, dir string, cmd *exec.Cmd) *daemon {
	t.Helper()
	requirePrivate(t, repoPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m := &daemon{repo: repoPath, cmd: cmd, stderr: &testlog.Buffer{}, exited: make(chan struct{})}
	if cmd.Stderr != nil { // the caller watches it too
		cmd.Stderr = io.MultiWriter(cmd.Stderr, m.stderr)
	} else {
		cmd.Stderr = m.stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mounted := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ready := false
		for sc.Scan() {
			line := sc.Text()
			if ready {
				continue
			}
			if id, ok := strings.CutPrefix(line, "PeerID: "); ok {
				m.id = id
			}
			if a, ok := strings.CutPrefix(line, "Swarm listening on "); ok {
				m.addrs = append(m.addrs, a)
			}
			if strings.HasPrefix(line, mountedLine) {
				ready = true
				mounted <- true
			}
		}
		m.err = cmd.Wait()
		close(m.exited)
		if !ready {
			mounted <- false
		}
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			cmd.Process.Kill()
			<-m.exited
		}
		if isMounted(t, dir) {
			exec.Command("umount", "-l", dir).Run()
		}
	})
	select {
	case ok := <-mounted:
		if !ok {
			t.Fatalf("bsfs mount exited before mounting (%v); stderr: %s", m.err, m.stderr)
		}
	case <-time.After(readyTimeout):
		t.Fatalf("bsfs mount not mounted within %s; stderr: %s", readyTimeout, m.stderr)
	}
	if err := privateConfig(repoPath, m.addrs); err != nil {
		t.Fatal(err)
	}
	return m
}

// isMounted reports whether a mount sits at dir. Like the other helpers
// reading mount tables, it reads the calling thread's (/proc/thread-self):
// TestMountUnprivileged runs in a mount namespace of its own thread.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// stopMount stops a mount with sig and checks it exits 0 and unmounts:
// nothing at dir in /proc/self/mountinfo or /proc/mounts, and dir a plain
// directory again.
func stopMount(t *testing.T, m *daemon, dir string, sig os.Signal) {
	t.Helper()
	if code := m.stop(t, sig); code != 0 {
		t.Errorf("bsfs mount exit code %d after %v; stderr: %s", code, sig, m.stderr)
	}
	if isMounted(t, dir) || mounttest.At(t, dir) > 0 {
		t.Errorf("%s still mounted after %v", dir, sig)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("stat of %s after %v: %v, want the directory", dir, sig, err)
	}
}

// TestMountSignals stops `bsfs mount` with SIGINT and with SIGTERM while
// nothing is open there: it exits 0, the mount is gone and the mountpoint
// is a plain directory again. The mount holds one descriptor of /dev/fuse
// while it runs.
func TestMountSignals(t *testing.T) {
	mounttest.RequireFUSE(t)
	repo := t.TempDir()
	data := []byte("read before the signal, " + time.Now().String())
	c := strings.TrimSpace(ok(t, repo, string(data), "block", "put"))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := startMount(t, repo, dir, "--listen", "/ip4/127.0.0.1/tcp/0")
			readMount(t, filepath.Join(dir, c), data)
			if n := mounttest.FUSEFDs(t, m.cmd.Process.Pid); n != 1 {
				t.Errorf("bsfs mount holds %d descriptors of /dev/fuse, want 1", n)
			}
			stopMount(t, m, dir, sig)
		})
	}
}

func readMount(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %s: %q, want %q", path, got, want)
	}
}

// TestMountThroughDaemon mounts the node of a running daemon: reads go
// through its API, and interrupting a reader cancels the daemon's want.
func TestMountThroughDaemon(t *testing.T) {
	mounttest.RequireFUSE(t)
	repo, dir := t.TempDir(), t.TempDir()
	startDaemon(t, repo)
	data := []byte("a block in the daemon's store, " + time.Now().String())
	c := strings.TrimSpace(ok(t, repo, string(data), "block", "put"))

	msg := fails(t, repo, "", "mount", dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	if !strings.Contains(msg, "daemon runs") {
		t.Errorf("mount --listen with a daemon running: %q", msg)
	}

	m := startMount(t, repo, dir)
	readMount(t, filepath.Join(dir, c), data)

	// A file added while mounted is listed at the top and reads back.
	file := make([]byte, 600<<10)
	rand.Read(file)
	added := strings.TrimSpace(ok(t, repo, "", "add", "-Q", writeFile(t, file)))
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != added || !ents[0].Type().IsRegular() {
		t.Errorf("ls of the mount: %v, %v; want the added file %s", ents, err, added)
	}
	readMount(t, filepath.Join(dir, added), file)
	readMount(t, filepath.Join(dir, "raw", c), data)
	buf := make([]byte, 64)
	k, err := syscall.Getxattr(filepath.Join(dir, c), "user.bsfs.local", buf)
	if err != nil || string(buf[:k]) != "1" {
		t.Errorf("user.bsfs.local: %q, %v; want 1", buf[:k], err)
	}
	if _, err := os.Stat(filepath.Join(dir, "not-a-cid")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat of a name that is not a CID: %v, want ENOENT", err)
	}

	checkNamespaces(t, dir, c, data)

	absent := absentCID(t, "nobody has this block, mounted")
	interruptCat(t, exec.Command("cat", filepath.Join(dir, absent.String())), repo, absent.String())

	stopMount(t, m, dir, syscall.SIGINT)
}

// TestMountOwnNode mounts with no daemon running: the mount runs the node,
// fetches over Bitswap, lists the repository's roots, and replaces the
// mount a killed predecessor left behind.
func TestMountOwnNode(t *testing.T) {
	mounttest.RequireFUSE(t)
	repoA, repoB, dir := t.TempDir(), t.TempDir(), t.TempDir()
	startDaemon(t, repoA)
	data := []byte("a block only A has, " + time.Now().String())
	c := strings.TrimSpace(ok(t, repoA, string(data), "block", "put"))
	root, err := cid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repopkg.Open(repoB)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddRoot(root); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	msg := fails(t, repoB, "", "mount", filepath.Join(dir, "missing"))
	if !strings.Contains(msg, "does not exist") {
		t.Errorf("mount on a missing directory: %q", msg)
	}

	m := startMount(t, repoB, dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	ok(t, repoA, "", "swarm", "connect", m.tcpAddr(t))
	readMount(t, filepath.Join(dir, c), data)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != c || !ents[0].Type().IsRegular() {
		t.Errorf("ls of the mount: %v, %v; want the one root %s, a file", ents, err, c)
	}
	checkNamespaces(t, dir, c, data)

	// Killed, the mount leaves a dead mount point; the next mount removes it.
	m.cmd.Process.Kill()
	<-m.exited
	if _, err := os.Stat(dir); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the killed mount: %v, want ENOTCONN", err)
	}
	m = startMount(t, repoB, dir, "--listen", "/ip4/127.0.0.1/tcp/0")
	if !m.logged("stale mount") {
		t.Errorf("no message about the stale mount; stderr: %s", m.stderr)
	}
	readMount(t, filepath.Join(dir, c), data) // stored by the first mount's fetch

	// A file held open keeps the mount busy: it is detached instead.
	held, err := os.Open(filepath.Join(dir, c))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	stopMount(t, m, dir, syscall.SIGTERM)
	if !strings.Contains(m.stderr.String(), "detached") {
		t.Errorf("no message about detaching the busy mount; stderr: %s", m.stderr)
	}
}

// checkNamespaces checks DIR/ipfs/<c> reads as data, and that DIR/ipns is a
// directory.
func checkNamespaces(t *testing.T, dir, c string, data []byte) {
	t.Helper()
	readMount(t, filepath.Join(dir, "ipfs", c), data)
	if fi, err := os.Stat(filepath.Join(dir, "ipns")); err != nil || !fi.IsDir() {
		t.Errorf("stat ipns: %v, %v; want a directory", fi, err)
	}
}

func TestMountHelp(t *testing.T) {
	out := ok(t, t.TempDir(), "", "mount", "--help")
	for _, want := range []string{"bsfs mount DIR", "--read-timeout", "--listen", "user.bsfs.local", "DIR/ipns/NAME", "DIR/ipfs/<cid>"} {
		if !strings.Contains(out, want) {
			t.Errorf("mount --help lacks %q:\n%s", want, out)
		}
	}
}

// TestDaemonMount: `bsfs daemon --mount DIR` serves the content at DIR
// while the API answers, and unmounts on SIGINT.
func TestDaemonMount(t *testing.T) {
	mounttest.RequireFUSE(t)
	repoPath, dir := t.TempDir(), t.TempDir()
	d := startDaemon(t, repoPath, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "", "--mount", dir)
	root := strings.TrimSpace(ok(t, repoPath, "through the daemon's mount", "add", "-Q", "-"))
	poll.UntilNil(t, waitTimeout, func() error {
		if got, err := os.ReadFile(filepath.Join(dir, root)); err != nil || string(got) != "through the daemon's mount" {
			return fmt.Errorf("read %q through the daemon's mount: %v", got, err)
		}
		return nil
	})
	d.stopClean(t)
	if isMounted(t, dir) {
		t.Fatalf("%s still mounted after the daemon stopped", dir)
	}
}

// TestMountReadLargerThanQuota reads, through the mount of a daemon with a
// 4 MiB cache, a 40 MiB file only a peer has: it reads back whole, and the
// store stays within the quota plus the read's prefetch window, sampled
// while the read runs.
func TestMountReadLargerThanQuota(t *testing.T) {
	mounttest.RequireFUSE(t)
	repoA, repoB, dir := t.TempDir(), t.TempDir(), t.TempDir()
	a := startDaemon(t, repoA, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")
	b := startDaemon(t, repoB, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "", "--cache-size", "4MiB", "--mount", dir)
	path, data := randomFile(t, 40<<20)
	root := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path))
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))

	// The quota, the read's window of 64 leaves, and the file's root.
	const bound = 4<<20 + 64*256<<10 + 64<<10
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, storeBytes(filepath.Join(repoB, "blocks")))
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	got, err := os.ReadFile(filepath.Join(dir, root))
	close(stop)
	<-sampled
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through the mount: %d bytes of %d, %v", len(got), len(data), err)
	}
	peak = max(peak, dirBytes(t, filepath.Join(repoB, "blocks")))
	t.Logf("store peak %d KiB during a 40 MiB read with a 4 MiB quota (bound %d KiB)", peak>>10, int64(bound)>>10)
	if peak > bound {
		t.Errorf("store reached %d bytes, more than the quota plus the window (%d)", peak, bound)
	}
	b.stopClean(t)
}

// storeBytes sums the blocks under dir, skipping files that vanish while
// it walks (eviction runs meanwhile).
func storeBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".data") {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			total += fi.Size()
		}
		return nil
	})
	return total
}

// TestMountOnLiveMount runs `bsfs mount DIR` where a bsfs mount is live:
// it fails at once with one line naming that mount and saying how to
// remove it, printing nothing else; DIR still has the one mount, which
// keeps serving and unmounts cleanly.
func TestMountOnLiveMount(t *testing.T) {
	mounttest.RequireFUSE(t)
	repo, dir := t.TempDir(), t.TempDir()
	data := []byte("served by the first mount, " + time.Now().String())
	c := strings.TrimSpace(ok(t, repo, string(data), "block", "put"))
	m := startMount(t, repo, dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")

	res := bsfs(t, repo, "", "mount", dir)
	if res.code == 0 {
		t.Fatalf("bsfs mount on a live mount exited 0 (%d mounts at %s); stdout: %q", mounttest.At(t, dir), dir, res.stdout)
	}
	msg := fails(t, repo, "", "mount", dir)
	for _, want := range []string{"live mount of bsfs (type fuse.bsfs)", dir, "unmount it first"} {
		if !strings.Contains(msg, want) {
			t.Errorf("mount on a live mount: %q, want it to name %q", msg, want)
		}
	}
	if k := mounttest.At(t, dir); k != 1 {
		t.Errorf("%d mounts at %s, want 1", k, dir)
	}
	readMount(t, filepath.Join(dir, c), data)
	stopMount(t, m, dir, syscall.SIGINT)
}

// interruptCat starts cat, waits until repo's daemon wants absent, the
// block cat waits for, sends cat SIGINT and checks that it exits at once
// and that the want is cancelled. It returns how cat exited.
func interruptCat(t *testing.T, cat *exec.Cmd, repo, absent string) error {
	t.Helper()
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cat.Wait() }()
	t.Cleanup(func() { cat.Process.Kill(); <-done })
	waitWantlist(t, repo, []string{absent})
	if err := cat.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var exit error
	select {
	case exit = <-done:
		done <- exit
	case <-time.After(stopTimeout):
		t.Fatalf("cat still running %s after SIGINT", stopTimeout)
	}
	waitWantlist(t, repo, nil)
	return exit
}
