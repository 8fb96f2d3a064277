package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/repo"
)

// LockWait is how long a node (the daemon, a mount running its own node)
// waits for a command to release the repository it holds briefly.
const LockWait = 5 * time.Second

// ErrDaemonRuns is returned by OpenRepo when a daemon serves the
// repository.
var ErrDaemonRuns = errors.New("a daemon already runs on it")

// OpenRepo opens the repository at path for a node that will serve it.
// A command holding it for a moment is waited for, up to LockWait; a
// daemon answering on its socket is not.
func OpenRepo(ctx context.Context, path string) (*repo.Repo, error) {
	wait, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	logged := false
	r, err := repo.OpenWait(wait, path, func(locked error) error {
		if c, _ := api.Dial(wait, path); c != nil {
			c.Close()
			return fmt.Errorf("%w: %w (its API answers on %s)", locked, ErrDaemonRuns, repo.APISocketPath(path))
		}
		if !logged {
			slog.Info("waiting for another bsfs process to release the repository", "max", LockWait, "err", locked)
			logged = true
		}
		return nil
	})
	switch {
	case err == nil:
		return r, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, repo.ErrLocked) && wait.Err() != nil:
		return nil, fmt.Errorf("%w: stop that process or let it finish, then try again", err)
	}
	return nil, err
}

// startupWait is how long a command waits for the API of a daemon that
// holds the repository but does not answer yet: it may be starting, or
// about to replace a socket left by a killed daemon.
const (
	startupWait     = 10 * time.Second
	startupInterval = 100 * time.Millisecond
)

// Open returns a client of the daemon serving the repository at path if
// one answers on its API socket, else the repository opened in this
// process as an offline node (created with defaults if absent). A socket
// nobody answers on is left over from a killed daemon and ignored. If
// another process holds the repository, it waits up to startupWait for a
// daemon to answer or the lock to be released.
func Open(ctx context.Context, path string) (*api.Client, *Node, error) {
	if c, _ := api.Dial(ctx, path); c != nil {
		return c, nil, nil
	}
	r, err := repo.Open(path)
	if err == nil {
		return nil, New(r), nil
	}
	if !errors.Is(err, repo.ErrLocked) {
		return nil, nil, err
	}
	// A daemon may hold the lock and not serve its API yet, or a command
	// may hold it for a moment.
	wait, cancel := context.WithTimeout(ctx, startupWait)
	defer cancel()
	for {
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("%w, and no daemon answers on %s", err, repo.APISocketPath(path))
		case <-time.After(startupInterval):
		}
		if c, _ := api.Dial(wait, path); c != nil {
			return c, nil, nil
		}
		var r *repo.Repo
		if r, err = repo.Open(path); err == nil {
			return nil, New(r), nil
		}
		if !errors.Is(err, repo.ErrLocked) {
			return nil, nil, err
		}
	}
}
