//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package repo

import (
	"errors"
	"os"
	"syscall"
)

// errWouldBlock is the error flock returns when the lock is held.
const errWouldBlock = syscall.EWOULDBLOCK

// flock takes an exclusive flock on f without waiting.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
