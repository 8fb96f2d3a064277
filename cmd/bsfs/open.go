package main

import (
	"context"

	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/node"
	"github.com/bsfs/bsfs/repo"
)

// lockWait is how long a node (the daemon, a mount running its own node)
// waits for a command to release the repository it holds briefly.
const lockWait = node.LockWait

// daemonNode is what openNode returns, and withNode and withDaemon run
// commands on: the repository opened in this process (*node.Node), or a
// running daemon through its local API (*api.Client). Either reads blocks
// as a unixfs.BlockGetter, each file in a session of its own.
type daemonNode interface {
	api.Backend
	// Online reports whether the node fetches from peers.
	Online() bool
	Close() error
}

var (
	_ daemonNode = (*node.Node)(nil)
	_ daemonNode = (*api.Client)(nil)
)

// openNode returns the running daemon if one answers on the repository's
// API socket, else the repository opened in this process (see node.Open).
func openNode(ctx context.Context) (daemonNode, error) {
	path, err := repo.DefaultPath()
	if err != nil {
		return nil, err
	}
	c, n, err := node.Open(ctx, path)
	switch {
	case err != nil:
		return nil, err
	case c != nil:
		return c, nil
	}
	return n, nil
}

// withNode runs f on the daemon or the local repository and closes it.
func withNode(ctx context.Context, f func(daemonNode) error) error {
	n, err := openNode(ctx)
	if err != nil {
		return err
	}
	return use(n, f)
}

// withDaemon runs f on the running daemon, or fails with api.ErrNoDaemon.
func withDaemon(ctx context.Context, f func(daemonNode) error) error {
	path, err := repo.DefaultPath()
	if err != nil {
		return err
	}
	if c, _ := api.Dial(ctx, path); c != nil {
		return use(c, f)
	}
	return api.ErrNoDaemon
}

// use runs f on n and closes n.
func use(n daemonNode, f func(daemonNode) error) error {
	err := f(n)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}
