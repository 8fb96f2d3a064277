package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrLocked means another process (or another Repo in this process) holds
// the repository.
var ErrLocked = errors.New("repository is locked")

// lock takes the exclusive, non-blocking advisory lock on the file at path
// and records this process's pid in it. The lock belongs to the open file:
// it is released when the file is closed or the process dies, so a crashed
// process never leaves a stale lock behind. A second open of the file in
// the same process conflicts like another process would.
func lock(path, repoPath string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			holder := ""
			if data, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
					holder = fmt.Sprintf(" (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("repository %s is in use by another bsfs process%s: %w", repoPath, holder, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// The pid is informational only: the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// Bounds of lockWait's polling interval, which doubles from the first to
// the last: a short hold is noticed at once, a long one costs little.
const (
	firstLockPoll = 5 * time.Millisecond
	lastLockPoll  = 50 * time.Millisecond
)

// lockWait is lock, trying again while another process holds the lock,
// until ctx ends. Each time the lock is found held, held (if not nil) is
// given the error and may end the wait at once with an error of its own.
func lockWait(ctx context.Context, path, repoPath string, held func(locked error) error) (*os.File, error) {
	start := time.Now()
	interval := firstLockPoll
	for {
		f, err := lock(path, repoPath)
		if !errors.Is(err, ErrLocked) {
			return f, err
		}
		if held != nil {
			if err := held(err); err != nil {
				return nil, err
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w; not released within %s", err, time.Since(start).Round(10*time.Millisecond))
		case <-t.C:
		}
		interval = min(2*interval, lastLockPoll)
	}
}
