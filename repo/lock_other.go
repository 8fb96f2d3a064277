//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package repo

import (
	"errors"
	"os"
)

// errWouldBlock is never returned where flock is unavailable.
var errWouldBlock = errors.New("lock held")

// flock is unavailable on this system: a repository cannot be locked.
func flock(*os.File) error {
	return errors.New("repository locking is not supported on this system")
}
