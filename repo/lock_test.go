package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv names the repository a re-executed test binary opens.
const helperEnv = "BSFS_REPO_TEST_HELPER"

// TestMain runs the test binary as the helper process of
// TestLockedAcrossProcesses when helperEnv names a repository.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(helperProcess(path))
	}
	os.Exit(m.Run())
}

// helperProcess opens the repository at path, reports "opened" or
// "locked" on stdout, and holds the repository until stdin is closed. It
// returns the process's exit code.
func helperProcess(path string) int {
	r, err := Open(path)
	switch {
	case errors.Is(err, ErrLocked):
		fmt.Println("locked")
		return 3
	case err != nil:
		fmt.Println("error", err)
		return 4
	}
	fmt.Println("opened")
	io.Copy(io.Discard, os.Stdin)
	r.Close()
	return 0
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	line  chan string
}

// startChild runs the helper on path and returns once it has reported.
func startChild(t *testing.T, path string) (*child, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, line: make(chan string, 1)}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			c.line <- s.Text()
		}
		close(c.line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-c.line:
		return c, l
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not report")
		return nil, ""
	}
}

// wait waits for the child to exit and returns its exit code.
func (c *child) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not exit")
		return -1
	}
}

func TestLockedAcrossProcesses(t *testing.T) {
	path := t.TempDir()

	// A child holds the repository: this process is kept out.
	holder, got := startChild(t, path)
	if got != "opened" {
		t.Fatalf("first child: %q; want opened", got)
	}
	r, err := Open(path)
	if !errors.Is(err, ErrLocked) {
		if err == nil {
			r.Close()
		}
		t.Fatalf("Open while a child holds the repository = %v; want ErrLocked", err)
	}
	if want := fmt.Sprintf("(pid %d)", holder.cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder %s", err, want)
	}

	// The holder dies without closing: the lock goes with it.
	if err := holder.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	holder.wait(t)
	r = mustOpen(t, path)

	// Now this process holds it: a child is kept out.
	if c, got := startChild(t, path); got != "locked" || c.wait(t) != 3 {
		t.Fatalf("child while this process holds the repository: %q", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// Released: a child gets it, and exits cleanly when told.
	c, got := startChild(t, path)
	if got != "opened" {
		t.Fatalf("child after Close: %q; want opened", got)
	}
	c.stdin.Close()
	if code := c.wait(t); code != 0 {
		t.Fatalf("child exit code %d", code)
	}
	closeT(t, mustOpen(t, path))
}

// TestOpenWaitOutlastsShortHold: OpenWait waits while another process holds
// the repository and opens it once that process lets go.
func TestOpenWaitOutlastsShortHold(t *testing.T) {
	path := t.TempDir()
	holder, got := startChild(t, path)
	if got != "opened" {
		t.Fatalf("child: %q; want opened", got)
	}
	// Release the child once OpenWait has found the lock held.
	var once sync.Once
	held := func(error) error {
		once.Do(func() { holder.stdin.Close() })
		return nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := OpenWait(ctx, path, held)
	if err != nil {
		t.Fatalf("OpenWait while a child holds the repository briefly: %v", err)
	}
	closeT(t, r)
	if code := holder.wait(t); code != 0 {
		t.Fatalf("child exit code %d", code)
	}
}

// TestOpenWaitBounded: OpenWait gives up when its context ends, with an
// error that names the repository and the wait, and at once when held
// says so.
func TestOpenWaitBounded(t *testing.T) {
	path := t.TempDir()
	closeT(t, mustOpen(t, path))

	const bound = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	calls := 0
	start := time.Now()
	r, err := OpenWait(ctx, path, func(error) error { calls++; return nil })
	elapsed := time.Since(start)
	if err == nil {
		r.Close()
		t.Fatal("OpenWait opened a repository this process holds")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenWait past its bound = %v; want ErrLocked", err)
	}
	if elapsed < bound || elapsed > bound+5*time.Second {
		t.Errorf("OpenWait gave up after %s; want just after %s", elapsed, bound)
	}
	if calls < 2 {
		t.Errorf("held called %d times in %s; want the lock tried again", calls, elapsed)
	}
	for _, want := range []string{path, "not released within"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// held ends the wait at once with its error.
	errHolder := errors.New("held by a daemon")
	var gotLocked error
	r, err = OpenWait(t.Context(), path, func(locked error) error { gotLocked = locked; return errHolder })
	if err == nil {
		r.Close()
		t.Fatal("OpenWait opened a repository this process holds")
	}
	if !errors.Is(err, errHolder) {
		t.Errorf("OpenWait when held gives up = %v; want its error", err)
	}
	if !errors.Is(gotLocked, ErrLocked) {
		t.Errorf("held was given %v; want ErrLocked", gotLocked)
	}
}
