package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/node"
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
const lockWait = node.LockWait

// openNode returns the running daemon if one answers on the repository's
// API socket, else the repository opened in this process (created with
// defaults if absent). A socket nobody answers on is left over from a
// killed daemon and ignored. If another process holds the repository, it
// waits up to startupWait for a daemon to answer or the lock to be
// released.
func openNode(ctx context.Context) (daemonNode, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	if c, _ := api.Dial(ctx, path); c != nil {
		return c, nil
	}
	r, err := repo.Open(path)
	if err == nil {
		return node.New(r), nil
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
		if c, _ := api.Dial(wait, path); c != nil {
			return c, nil
		}
		var r *repo.Repo
		if r, err = repo.Open(path); err == nil {
			return node.New(r), nil
		}
		if !errors.Is(err, repo.ErrLocked) {
			return nil, err
		}
	}
}

// requireDaemon returns the running daemon, or api.ErrNoDaemon.
func requireDaemon(ctx context.Context) (daemonNode, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	if c, _ := api.Dial(ctx, path); c != nil {
		return c, nil
	}
	return nil, api.ErrNoDaemon
}

// withNode runs f on the daemon or the local repository and closes it.
func withNode(ctx context.Context, f func(daemonNode) error) error {
	n, err := openNode(ctx)
	if err != nil {
		return err
	}
	err = f(n)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// withDaemon runs f on the running daemon, or fails with api.ErrNoDaemon.
func withDaemon(ctx context.Context, f func(daemonNode) error) error {
	n, err := requireDaemon(ctx)
	if err != nil {
		return err
	}
	err = f(n)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}
