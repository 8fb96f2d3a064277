package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bsfs/bsfs/repo"
)

// apiSocketName is the daemon's API socket inside the repository.
const apiSocketName = "api.sock"

// lockedRetry is how long a command waits for the API of a daemon that
// holds the repository but may still be starting.
const (
	lockedRetries  = 15
	lockedInterval = 200 * time.Millisecond
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
	if c, ok := dialDaemon(ctx, path); ok {
		return c, nil
	}
	r, err := repo.Open(path)
	if err == nil {
		return &repoNode{repo: r}, nil
	}
	if !errors.Is(err, repo.ErrLocked) {
		return nil, err
	}
	// A daemon may hold the lock and not serve its API yet.
	for range lockedRetries {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockedInterval):
		}
		if c, ok := dialDaemon(ctx, path); ok {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w, and no daemon answers on %s", err, filepath.Join(path, apiSocketName))
}

// requireDaemon returns the running daemon, or errNoDaemon.
func requireDaemon(ctx context.Context) (node, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	if c, ok := dialDaemon(ctx, path); ok {
		return c, nil
	}
	return nil, errNoDaemon
}

// dialDaemon returns a client of the daemon serving the repository at path,
// if its socket exists and answers.
func dialDaemon(ctx context.Context, path string) (*apiClient, bool) {
	sock := filepath.Join(path, apiSocketName)
	if _, err := os.Stat(sock); err != nil {
		return nil, false
	}
	c := newAPIClient(sock)
	if !c.probe(ctx) {
		c.Close()
		return nil, false
	}
	return c, true
}
