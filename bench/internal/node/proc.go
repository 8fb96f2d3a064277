package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// Proc is a long-running child: an ipfs or bsfs daemon, or the memfile
// mount. Its standard output and error go to a log file.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error

	mu    sync.Mutex
	lines []string // standard output up to the ready line
}

// Procs tracks the daemons alive, so that an interrupted run stops them
// all. The zero value is ready to use.
type Procs struct {
	mu   sync.Mutex
	live map[*Proc]struct{}
}

// Start runs cmd and waits until it prints a line containing ready on its
// standard output.
func (p *Procs) Start(ctx context.Context, name string, cmd *exec.Cmd, logPath, ready string) (*Proc, error) {
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
	d := &Proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.mu.Lock()
	if p.live == nil {
		p.live = map[*Proc]struct{}{}
	}
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
		err = fmt.Errorf("%s exited before it was ready: %v; log %s:\n%s", name, d.waitErr, logPath, Tail(logPath))
	case <-ctx.Done():
		err = fmt.Errorf("%s not ready: %w; log %s:\n%s", name, ctx.Err(), logPath, Tail(logPath))
	}
	p.Stop(d)
	return nil, err
}

// Stop sends SIGTERM, waits up to stopTimeout, then kills the daemon's
// process group. It reports a daemon that had exited before it was asked.
func (p *Procs) Stop(d *Proc) error {
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

// StopAll stops every daemon still alive, in parallel.
func (p *Procs) StopAll() {
	p.mu.Lock()
	var ds []*Proc
	for d := range p.live {
		ds = append(ds, d)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { p.Stop(d) })
	}
	wg.Wait()
}

// StartLines returns what the daemon printed up to its ready line.
func (d *Proc) StartLines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

// PeakRSS returns the daemon's VmHWM, the peak resident set size, in bytes.
func (d *Proc) PeakRSS() (int64, error) { return d.status("VmHWM") }

// FileRSS returns the daemon's RssFile: its resident pages mapped from
// files (its program's code and data, mostly), in bytes.
func (d *Proc) FileRSS() (int64, error) { return d.status("RssFile") }

// RSS returns the daemon's VmRSS, its resident set size now, in bytes.
func (d *Proc) RSS() (int64, error) { return d.status("VmRSS") }

// status returns a field of /proc/PID/status given in kB, in bytes.
func (d *Proc) status(field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Pid()))
	if err != nil {
		return 0, err
	}
	return statusField(string(raw), field)
}

// statusField returns field, given in kB, of a /proc/PID/status text, in
// bytes.
func statusField(status, field string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// FDs returns how many file descriptors the daemon has open.
func (d *Proc) FDs() (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Pid()))
	return len(ents), err
}

// Pid is the daemon's process ID.
func (d *Proc) Pid() int { return d.cmd.Process.Pid }

// LogPath is the daemon's log file.
func (d *Proc) LogPath() string { return d.logPath }

// Exited is closed when the daemon has exited.
func (d *Proc) Exited() <-chan struct{} { return d.exited }

// Tail returns the last lines of a log file.
func Tail(path string) string {
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

// RunCmd runs a short command and returns its standard output; the error
// carries its standard error.
func RunCmd(ctx context.Context, env []string, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, OneLine(stderr.String()))
	}
	return out, nil
}

// TimedCount runs a command whose standard output is counted and thrown
// away, and returns how long it took and how many bytes it wrote.
func TimedCount(ctx context.Context, env []string, bin string, args ...string) (time.Duration, int64, error) {
	return TimedCopy(ctx, io.Discard, env, bin, args...)
}

// TimedCopy runs a command, copies its standard output to w, and returns
// how long it took and how many bytes it wrote.
func TimedCopy(ctx context.Context, w io.Writer, env []string, bin string, args ...string) (time.Duration, int64, error) {
	t, err := Timed(ctx, w, env, bin, args...)
	return t.Wall, t.Bytes, err
}

// Timing is what a command took.
type Timing struct {
	Wall  time.Duration
	Bytes int64 // written to standard output
	// CPU is the command's user and system time, from its rusage: its own
	// and that of any children it waited for.
	CPU time.Duration
}

// Timed runs a command, copies its standard output to w, and returns its
// Timing.
func Timed(ctx context.Context, w io.Writer, env []string, bin string, args ...string) (Timing, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Timing{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Timing{}, err
	}
	n, cerr := io.Copy(w, out)
	err = cmd.Wait()
	t := Timing{Wall: time.Since(start), Bytes: n}
	if err == nil {
		err = cerr
	}
	if err != nil {
		return Timing{Bytes: n}, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, OneLine(stderr.String()))
	}
	t.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return t, nil
}

// OneLine keeps the first lines of a message, joined.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// UnmountUnder lazily unmounts every FUSE mount left under dir, such as
// those of a daemon that was killed.
func UnmountUnder(dir string) {
	raw, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, m := range parseMounts(string(raw), dir) {
		exec.Command("fusermount3", "-u", "-z", m).Run()
	}
}

// Mounted reports whether a FUSE file system is mounted at dir.
func Mounted(dir string) bool {
	raw, err := os.ReadFile("/proc/self/mounts")
	return err == nil && slices.Contains(parseMounts(string(raw), dir), dir)
}

// parseMounts returns the FUSE mount points under dir in a /proc/mounts
// text, deepest first.
func parseMounts(mounts, dir string) []string {
	var out []string
	for line := range strings.SplitSeq(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[2], "fuse") {
			continue
		}
		if f[1] == dir || strings.HasPrefix(f[1], dir+"/") {
			out = append(out, f[1])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
