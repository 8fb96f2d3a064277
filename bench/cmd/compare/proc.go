package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds a daemon's start.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long a SIGTERM may take before SIGKILL.
	stopTimeout = 15 * time.Second
)

// daemon is a long-running child: an ipfs or bsfs daemon, or the memfile
// mount. Its standard output and error go to a log file.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error

	mu    sync.Mutex
	lines []string // standard output up to the ready line
}

// procs tracks the daemons alive, so that an interrupted run stops them all.
type procs struct {
	mu   sync.Mutex
	live map[*daemon]struct{}
}

// start runs cmd and waits until it prints a line containing ready on its
// standard output.
func (p *procs) start(ctx context.Context, name string, cmd *exec.Cmd, logPath, ready string) (*daemon, error) {
	// Appending, so that the child's standard error and its standard
	// output, copied below, interleave.
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = logf
	// Killed with us if we die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.mu.Lock()
	p.live[d] = struct{}{}
	p.mu.Unlock()

	readyc := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer logf.Close()
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if seen {
				continue
			}
			d.mu.Lock()
			d.lines = append(d.lines, line)
			d.mu.Unlock()
			if strings.Contains(line, ready) {
				seen = true
				close(readyc)
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		<-copied // Wait must not run before the pipe is drained
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	select {
	case <-readyc:
		return d, nil
	case <-d.exited:
		err = fmt.Errorf("%s exited before it was ready: %v; log %s:\n%s", name, d.waitErr, logPath, tail(logPath))
	case <-ctx.Done():
		err = fmt.Errorf("%s not ready: %w; log %s:\n%s", name, ctx.Err(), logPath, tail(logPath))
	}
	p.stop(d)
	return nil, err
}

// stop sends SIGTERM, waits up to stopTimeout, then kills the daemon's
// process group. It reports a daemon that had exited before it was asked.
func (p *procs) stop(d *daemon) error {
	var err error
	select {
	case <-d.exited:
		err = fmt.Errorf("%s exited before it was stopped (%v); log %s", d.name, d.cmd.ProcessState, d.logPath)
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(stopTimeout):
			err = fmt.Errorf("%s ignored SIGTERM for %v; killed", d.name, stopTimeout)
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
	}
	p.mu.Lock()
	delete(p.live, d)
	p.mu.Unlock()
	return err
}

// stopAll stops every daemon still alive, in parallel.
func (p *procs) stopAll() {
	p.mu.Lock()
	var ds []*daemon
	for d := range p.live {
		ds = append(ds, d)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { p.stop(d) })
	}
	wg.Wait()
}

// startLines returns what the daemon printed up to its ready line.
func (d *daemon) startLines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

// peakRSS returns the daemon's VmHWM, the peak resident set size, in bytes.
func (d *daemon) peakRSS() (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// tail returns the last lines of a log file.
func tail(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4 << 10
	if len(raw) > max {
		raw = raw[len(raw)-max:]
	}
	return string(bytes.TrimSpace(raw))
}

// runCmd runs a short command and returns its standard output; the error
// carries its standard error.
func runCmd(ctx context.Context, env []string, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, oneLine(stderr.String()))
	}
	return out, nil
}

// timedCount runs a command whose standard output is counted and thrown
// away, and returns how long it took and how many bytes it wrote.
func timedCount(ctx context.Context, env []string, bin string, args ...string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	n, cerr := io.Copy(io.Discard, out)
	err = cmd.Wait()
	elapsed := time.Since(start)
	if err == nil {
		err = cerr
	}
	if err != nil {
		return 0, n, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, oneLine(stderr.String()))
	}
	return elapsed, n, nil
}

// oneLine keeps the first lines of a message, joined.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return strings.ReplaceAll(s, "\n", " | ")
}
