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
