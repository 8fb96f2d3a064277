package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"time"

	"github.com/bsfs/bsfs/internal/testlog"
	repopkg "github.com/bsfs/bsfs/repo"
)

// bsfsBin is the binary under test, built once by TestMain.
var bsfsBin string

// Bounds of the tests' waits.
const (
	commandTimeout = 60 * time.Second
	readyTimeout   = 30 * time.Second
	stopTimeout    = 15 * time.Second
)

func TestMain(m *testing.M) {
	// Every repository a test creates, through any command or daemon it
	// runs, gets the test profile: nothing leaves the loopback interface.
	// Set here, for the process and so for each child, it is on for every
	// test without a test having to ask. The public defaults are tested
	// by reading the config that `bsfs init` writes with it unset.
	if err := os.Setenv(repopkg.EnvInitProfile, repopkg.ProfileTest); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "bsfs-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Open to every user: TestMountUnprivileged runs the binary as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bsfsBin = filepath.Join(dir, "bsfs")
	args := []string{"build", "-o", bsfsBin}
	if raceBuild {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building bsfs: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is how one run of the binary ended.
type result struct {
	stdout, stderr string
	code           int
}

// bsfs runs the binary with BSFS_PATH=repoPath and stdin, and waits for it.
func bsfs(t *testing.T, repoPath, stdin string, args ...string) result {
	t.Helper()
	return bsfsWithin(t, commandTimeout, repoPath, stdin, args...)
}

// bsfsWithin is bsfs failing the test if the run takes longer than limit.
func bsfsWithin(t *testing.T, limit time.Duration, repoPath, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	res, err := runBsfs(ctx, repoPath, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runBsfs runs the binary with BSFS_PATH=repoPath and stdin until it exits or
// ctx ends; it fails if the binary could not run or did not finish.
func runBsfs(ctx context.Context, repoPath, stdin string, args ...string) (result, error) {
	cmd := exec.CommandContext(ctx, bsfsBin, args...)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repoPath)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("bsfs %s: did not finish in time: %w", strings.Join(args, " "), ctx.Err())
	}
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		res.code = exitErr.ExitCode()
	} else if err != nil {
		return res, fmt.Errorf("bsfs %s: %w", strings.Join(args, " "), err)
	}
	return res, nil
}

// ok runs the binary and fails the test unless it exits 0; it returns stdout.
func ok(t *testing.T, repoPath, stdin string, args ...string) string {
	t.Helper()
	res := bsfs(t, repoPath, stdin, args...)
	if res.code != 0 {
		t.Fatalf("bsfs %s: exit %d, stderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// fails runs the binary and fails the test unless it exits non-zero with a
// one-line error on stderr and nothing on stdout; it returns that line.
func fails(t *testing.T, repoPath, stdin string, args ...string) string {
	t.Helper()
	res := bsfs(t, repoPath, stdin, args...)
	if res.code == 0 {
		t.Fatalf("bsfs %s: exit 0, want failure; stdout: %q", strings.Join(args, " "), res.stdout)
	}
	if res.stdout != "" {
		t.Errorf("bsfs %s: stdout %q, want nothing", strings.Join(args, " "), res.stdout)
	}
	line, rest, _ := strings.Cut(res.stderr, "\n")
	if rest != "" || !strings.HasPrefix(line, "Error: ") {
		t.Errorf("bsfs %s: stderr %q, want one line \"Error: ...\"", strings.Join(args, " "), res.stderr)
	}
	return line
}

// daemon is a running `bsfs daemon`.
type daemon struct {
	repo    string
	id      string
	addrs   []string // listen addresses with /p2p/
	metrics string   // metrics URL, if served
	cmd     *exec.Cmd
	stderr  *testlog.Buffer
	exited  chan struct{} // closed when the process has been waited for
	err     error         // Wait's error, set before exited is closed
	lines   chan string   // stdout up to the ready line, closed at exit
}

// startDaemon starts `bsfs daemon` on repoPath, listening on loopback TCP
// unless args say otherwise, and waits until it is ready. The test's
// cleanup stops it if the test did not.
func startDaemon(t *testing.T, repoPath string, args ...string) *daemon {
	t.Helper()
	d := launchDaemon(t, repoPath, args...)
	if err := d.waitReady(); err != nil {
		t.Fatal(err)
	}
	return d
}

// launchDaemon starts `bsfs daemon` as startDaemon does, without waiting
// for it to be ready.
func launchDaemon(t *testing.T, repoPath string, args ...string) *daemon {
	t.Helper()
	if len(args) == 0 {
		args = []string{"--listen", "/ip4/127.0.0.1/tcp/0"}
	}
	requirePrivate(t, repoPath)
	cmd := exec.Command(bsfsBin, append([]string{"daemon"}, args...)...)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repoPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{repo: repoPath, cmd: cmd, stderr: &testlog.Buffer{}, exited: make(chan struct{}), lines: make(chan string)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.lines)
		sc := bufio.NewScanner(stdout)
		ready := false
		for sc.Scan() {
			if !ready {
				d.lines <- sc.Text()
				ready = sc.Text() == readyLine
			}
		}
		// Wait only once stdout is drained, as exec requires.
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

// waitReady reads the daemon's start-up lines until it is ready, and
// fails if it exits first or is not ready within readyTimeout.
func (d *daemon) waitReady() error {
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				<-d.exited
				return fmt.Errorf("daemon exited before it was ready (%v); stderr: %s", d.err, d.stderr)
			}
			if id, found := strings.CutPrefix(line, "PeerID: "); found {
				d.id = id
			}
			if a, found := strings.CutPrefix(line, "Swarm listening on "); found {
				d.addrs = append(d.addrs, a)
			}
			if u, found := strings.CutPrefix(line, "Metrics on "); found {
				d.metrics = u
			}
			if line == readyLine {
				if d.id == "" || len(d.addrs) == 0 {
					return fmt.Errorf("daemon ready without a peer ID or addresses (id %q, addrs %q)", d.id, d.addrs)
				}
				return privateConfig(d.repo, d.addrs)
			}
		case <-timer.C:
			return fmt.Errorf("daemon not ready within %s; stderr: %s", readyTimeout, d.stderr)
		}
	}
}

// logged reports whether the process's stderr comes to hold s within
// readyTimeout. Its stderr is copied from a pipe of its own, so a line
// written before one seen on stdout may reach the buffer after it.
func (d *daemon) logged(s string) bool {
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(d.stderr.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// stop sends sig and returns the daemon's exit code.
func (d *daemon) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling the daemon: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("daemon still running %s after %v; stderr: %s", stopTimeout, sig, d.stderr)
	}
	if exitErr, ok := errors.AsType[*exec.ExitError](d.err); ok {
		return exitErr.ExitCode()
	}
	if d.err != nil {
		t.Fatalf("daemon: %v", d.err)
	}
	return 0
}

// stopClean stops the daemon with SIGINT and checks it exits 0 and removes
// its API socket.
func (d *daemon) stopClean(t *testing.T) {
	t.Helper()
	if code := d.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("daemon exit code %d after SIGINT, want 0; stderr: %s", code, d.stderr)
	}
	if _, err := os.Stat(repopkg.APISocketPath(d.repo)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API socket after shutdown: %v, want it removed", err)
	}
}

// tcpAddr returns the daemon's first TCP listen address.
func (d *daemon) tcpAddr(t *testing.T) string {
	t.Helper()
	for _, a := range d.addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	t.Fatalf("daemon has no TCP address: %q", d.addrs)
	return ""
}

// writeFile writes data to a new file in a temporary directory.
func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lines splits output into its lines.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
