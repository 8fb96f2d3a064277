package fs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrMountPointInUse is wrapped by the error of Mount and Check when a live
// mount already sits at the mount point.
var ErrMountPointInUse = errors.New("mount point in use")

// Check reports why Mount would fail at dir, before anything else is
// started: dir is missing or not a directory, a live mount sits there
// (ErrMountPointInUse; a stale one is no obstacle, Mount detaches it), or,
// when not root, /dev/fuse cannot be opened or fusermount3 is not found.
// Each error says what to do.
func Check(dir string) error {
	if err := checkMountPoint(dir); err != nil {
		return err
	}
	return checkFUSE()
}

// checkMountPoint fails unless dir is a directory with no live mount on it.
// Any live mount is refused, bsfs or not: a second mount on top would hide
// the first without ending it.
func checkMountPoint(dir string) error {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_TYPE|unix.STATX_MNT_ID, &st)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return nil // a stale mount: Mount detaches it
	case errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("mount point %s does not exist", dir)
	case errors.Is(err, syscall.EACCES):
		// The root of another user's FUSE mount answers nobody else, root
		// included.
		if m, ok := mountAt(dir, 0); ok {
			return inUse(dir, m, "another user's mount")
		}
		return fmt.Errorf("mount point %s: %w", dir, err)
	case err != nil:
		return fmt.Errorf("mount point %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	if st.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return nil // not a mount's root (or a kernel before 5.8, which does not say)
	}
	m, _ := mountAt(dir, st.Mnt_id)
	return inUse(dir, m, "a live mount")
}

// mountEntry is a line of /proc/self/mountinfo.
type mountEntry struct {
	point, fsType, source string
}

// mountAt finds the mount with ID id in the calling thread's mount table
// (/proc/thread-self/mountinfo) or, when id is 0, the topmost mount at dir.
func mountAt(dir string, id uint64) (mountEntry, bool) {
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return mountEntry{}, false
	}
	var path string
	if id == 0 {
		// Resolves the parent only: the mount's root may refuse lstat.
		abs, err := filepath.Abs(dir)
		if err != nil {
			return mountEntry{}, false
		}
		parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
		if err != nil {
			return mountEntry{}, false
		}
		path = filepath.Join(parent, filepath.Base(abs))
	}
	var found mountEntry
	ok := false
	for line := range strings.SplitSeq(string(data), "\n") {
		// ID parent major:minor root point options [optional...] - type source super
		f := strings.Fields(line)
		sep := -1
		for i, s := range f {
			if s == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(f) < sep+3 {
			continue
		}
		e := mountEntry{point: unescapeMountinfo(f[4]), fsType: f[sep+1], source: unescapeMountinfo(f[sep+2])}
		if id != 0 {
			if mid, err := strconv.ParseUint(f[0], 10, 64); err == nil && mid == id {
				return e, true
			}
			continue
		}
		if e.point == path {
			found, ok = e, true // later lines are mounted on top of earlier ones
		}
	}
	return found, ok
}

// unescapeMountinfo undoes the octal escapes of space, tab, newline and
// backslash in /proc/self/mountinfo's fields.
func unescapeMountinfo(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// inUse is the error for mount m at dir, which is what ("a live mount"),
// naming what is there and how to remove it.
func inUse(dir string, m mountEntry, what string) error {
	if m.fsType != "" {
		what = fmt.Sprintf("%s of %s (type %s)", what, m.source, m.fsType)
	}
	how := "umount " + dir
	if strings.HasPrefix(m.fsType, "fuse") {
		how = "fusermount3 -u " + dir
	}
	return inUseError(fmt.Sprintf("mount point %s is in use: %s is there; unmount it first (%s) or choose another directory", dir, what, how))
}

// inUseError is ErrMountPointInUse with a message naming the mount.
type inUseError string

func (e inUseError) Error() string { return string(e) }

// Is makes errors.Is(e, ErrMountPointInUse) hold.
func (e inUseError) Is(target error) bool { return target == ErrMountPointInUse }

// checkFUSE fails, saying what to do, when this process is not root and
// cannot mount through fusermount3: /dev/fuse does not open for it, or
// fusermount3 is not installed.
func checkFUSE() error {
	if os.Geteuid() == 0 {
		return nil
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	switch {
	case errors.Is(err, iofs.ErrPermission):
		return errors.New("cannot open /dev/fuse: permission denied; FUSE is not open to users here: as root, chmod 0666 /dev/fuse (the mode distributions ship it with), or run bsfs mount as root")
	case errors.Is(err, iofs.ErrNotExist):
		return errors.New("no /dev/fuse: load the kernel's fuse module (modprobe fuse as root), or in a container pass the device in (--device /dev/fuse)")
	case err != nil:
		return fmt.Errorf("cannot open /dev/fuse: %w", err)
	}
	f.Close()
	if _, err := fusermount(); err != nil {
		return errors.New("fusermount3 not found: a user who is not root mounts through FUSE's setuid helper fusermount3; install the fuse3 package (apt-get install fuse3), or run bsfs mount as root")
	}
	return nil
}

// fusermount finds the setuid helper that mounts and unmounts when not
// root where go-fuse looks for it: fusermount3 in PATH, then in /bin, then
// FUSE 2's fusermount likewise.
func fusermount() (string, error) {
	var err error
	for _, name := range []string{"fusermount3", "/bin/fusermount3", "fusermount", "/bin/fusermount"} {
		var p string
		if p, err = exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", err
}
