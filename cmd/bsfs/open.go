package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bsfs/bsfs/repo"
)

// startupWait is how long a command waits for the API of a daemon that
// holds the repository but has no socket yet: it may be starting.
const (
	startupWait     = 3 * time.Second
	startupInterval = 200 * time.Millisecond
)

// openNode returns the running daemon if one answers on the repository's
// API socket, else the repository opened in this process (created with
// defaults if absent). A socket nobody answers on is left over from a
// killed daemon and ignored.
func openNode(ctx context.Context) (node, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	c, sockExisted := dialDaemon(ctx, path)
	if c != nil {
		return c, nil
	}
	r, err := repo.Open(path)
	if err == nil {
		return &repoNode{repo: r}, nil
	}
	if !errors.Is(err, repo.ErrLocked) {
		return nil, err
	}
	sock := repo.APISocketPath(path)
	if sockExisted {
		return nil, fmt.Errorf("%w, and no daemon answers on %s", err, sock)
	}
	// A daemon may hold the lock and not serve its API yet.
	wait, cancel := context.WithTimeout(ctx, startupWait)
	defer cancel()
	for {
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w, and no daemon answers on %s", err, sock)
		case <-time.After(startupInterval):
		}
		if c, _ := dialDaemon(wait, path); c != nil {
			return c, nil
		}
	}
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
