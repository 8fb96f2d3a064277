package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/bsfs/bsfs/repo"
)

// startupWait is how long a command waits for the API of a daemon that
// holds the repository but does not answer yet: it may be starting, or
// about to replace a socket left by a killed daemon.
const (
	startupWait     = 10 * time.Second
	startupInterval = 100 * time.Millisecond
)

// lockWait is how long a node (the daemon, a mount running its own node)
// waits for a command to release the repository it holds briefly.
const lockWait = 5 * time.Second

// errDaemonRuns is returned by openForNode when a daemon serves the
// repository.
var errDaemonRuns = errors.New("a daemon already runs on it")

// openNode returns the running daemon if one answers on the repository's
// API socket, else the repository opened in this process (created with
// defaults if absent). A socket nobody answers on is left over from a
// killed daemon and ignored. If another process holds the repository, it
// waits up to startupWait for a daemon to answer or the lock to be
// released.
func openNode(ctx context.Context) (node, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	if c, _ := dialDaemon(ctx, path); c != nil {
		return c, nil
	}
	r, err := repo.Open(path)
	if err == nil {
		return &repoNode{repo: r}, nil
	}
	if !errors.Is(err, repo.ErrLocked) {
		return nil, err
	}
	// A daemon may hold the lock and not serve its API yet, or a command
	// may hold it for a moment.
	wait, cancel := context.WithTimeout(ctx, startupWait)
	defer cancel()
	for {
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w, and no daemon answers on %s", err, repo.APISocketPath(path))
		case <-time.After(startupInterval):
		}
		if c, _ := dialDaemon(wait, path); c != nil {
			return c, nil
		}
		var r *repo.Repo
		if r, err = repo.Open(path); err == nil {
			return &repoNode{repo: r}, nil
		}
		if !errors.Is(err, repo.ErrLocked) {
			return nil, err
		}
	}
}

// openForNode opens the repository at path for a node that will serve it.
// A command holding it for a moment is waited for, up to lockWait; a
// daemon answering on its socket is not.
func openForNode(ctx context.Context, path string) (*repo.Repo, error) {
	wait, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	logged := false
	r, err := repo.OpenWait(wait, path, func(locked error) error {
		if c, _ := dialDaemon(wait, path); c != nil {
			c.Close()
			return fmt.Errorf("%w: %w (its API answers on %s)", locked, errDaemonRuns, repo.APISocketPath(path))
		}
		if !logged {
			slog.Info("waiting for another bsfs process to release the repository", "max", lockWait, "err", locked)
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

// requireDaemon returns the running daemon, or errNoDaemon.
func requireDaemon(ctx context.Context) (node, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	if c, _ := dialDaemon(ctx, path); c != nil {
		return c, nil
	}
	return nil, errNoDaemon
}

// dialDaemon returns a client of the daemon serving the repository at path
// if its socket answers, and whether the socket exists.
func dialDaemon(ctx context.Context, path string) (*apiClient, bool) {
	sock := repo.APISocketPath(path)
	if _, err := os.Stat(sock); err != nil {
		return nil, false
	}
	c := newAPIClient(sock)
	if !c.probe(ctx) {
		c.Close()
		return nil, true
	}
	return c, true
}
