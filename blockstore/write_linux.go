//go:build linux

package blockstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	flatfs "github.com/ipfs/go-ds-flatfs"
	"golang.org/x/sys/unix"
)

// writer creates new block files itself, with the names, modes and
// directories flatfs gives them, in fewer system calls than flatfs's Put:
// each block is written to an unnamed file (O_TMPFILE) in its shard
// directory and linked under its name only once complete, so no reader and
// no crash ever sees a partial block, and a crash leaves no temporary file
// behind. Shard directories are created once, on first use, and then
// trusted until a write finds one gone.
//
// Making the unnamed file (allocating its inode) is most of a small
// block's write on some file systems: once the first block is written, a
// goroutine of the writer keeps a few unnamed files made ahead in the
// root, and a write takes one when there is one (a file is linked into
// any directory of its file system), so that cost leaves the write. The
// same goroutine makes the shard directories of the blocks the store is
// told to expect (expect), before their writes need them.
//
// It only creates files: replacing a file already there, and every write
// on a system without O_TMPFILE or /proc, is left to flatfs (errFlatfs).
type writer struct {
	root   string
	dirfd  int // root, open for openat, linkat and fsync
	sync   bool
	shard  flatfs.ShardFunc
	shards sync.Map // shard directory name -> struct{}: known to exist
	// off is set once the system cannot write this way.
	off atomic.Bool
	// added counts the bytes of the files and directories created, which
	// flatfs's disk usage count does not know of.
	added atomic.Int64

	// makeAhead, started by the first write or expect (started), makes
	// the shard directories in dirs and the unnamed files in spares;
	// wake asks it for more, stop ends it.
	dirsMu  sync.Mutex
	dirs    map[string]struct{}
	spares  chan int
	wake    chan struct{}
	stop    chan struct{}
	started sync.Once
	wg      sync.WaitGroup
}

// spareFiles is how many unnamed files a writer keeps made ahead: a few
// for the blocks of a message stored at once; a file descriptor each.
const spareFiles = 4

// errFlatfs means a write must go through flatfs instead.
var errFlatfs = errors.New("write through flatfs")

// newWriter opens the store's root directory for writing.
func newWriter(root string, shard flatfs.ShardFunc, sync bool) (*writer, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	w := &writer{root: root, dirfd: fd, sync: sync, shard: shard,
		spares: make(chan int, spareFiles), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	// Linking an unnamed file needs its /proc path (or a privilege).
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		w.off.Store(true)
	}
	return w, nil
}

// create writes data as the new block file for key. It returns errFlatfs
// when the file must be written through flatfs: when this system cannot
// write unnamed files, or when a file of another size is already there.
// With sync set, the file is synced before it is linked and its directory
// after, unless dirs is non-nil: the directory is then added to dirs for
// the caller to sync.
func (w *writer) create(key string, data []byte, dirs map[string]bool) error {
	if w.off.Load() {
		return errFlatfs
	}
	dir := w.shard(key)
	name := dir + "/" + key + fileExt
	for attempt := 0; ; attempt++ {
		err := w.link(dir, name, data)
		if errors.Is(err, unix.ENOENT) && attempt == 0 {
			// The shard directory was removed behind the store's back.
			w.shards.Delete(dir)
			continue
		}
		if errors.Is(err, unix.EEXIST) {
			// Stored meanwhile, by another Put or another process.
			var st unix.Stat_t
			if err := unix.Fstatat(w.dirfd, name, &st, 0); err != nil || st.Size != int64(len(data)) {
				return errFlatfs
			}
			return nil
		}
		if err != nil {
			return err
		}
		break
	}
	w.added.Add(int64(len(data)))
	if !w.sync {
		return nil
	}
	if dirs != nil {
		dirs[dir] = true
		return nil
	}
	return w.syncDirs(map[string]bool{dir: true})
}

// link writes data to an unnamed file in dir and links it as name.
func (w *writer) link(dir, name string, data []byte) error {
	if err := w.mkdir(dir); err != nil {
		return err
	}
	fd, err := w.unnamed(dir)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			w.off.Store(true)
			return errFlatfs
		}
		return w.pathErr("open", dir, err)
	}
	defer unix.Close(fd)
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return w.pathErr("write", name, err)
		}
		rest = rest[n:]
	}
	if w.sync {
		if err := unix.Fsync(fd); err != nil {
			return w.pathErr("sync", name, err)
		}
	}
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), w.dirfd, name, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EXDEV):
		w.off.Store(true)
		return errFlatfs
	}
	return w.pathErr("link", name, err)
}

// unnamed returns an unnamed file to write a block of dir to: a spare if
// there is one, else a new one in dir. Either way makeAhead is asked to
// make up for it.
func (w *writer) unnamed(dir string) (int, error) {
	defer w.signal()
	select {
	case fd := <-w.spares:
		return fd, nil
	default:
	}
	return unix.Openat(w.dirfd, dir, unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
}

// signal wakes makeAhead, starting it the first time.
func (w *writer) signal() {
	w.started.Do(func() {
		w.wg.Add(1)
		go w.makeAhead()
	})
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// expect has the shard directories of the block files for keys made in
// the background, those not known to exist yet. It does not wait.
func (w *writer) expect(keys []string) {
	added := false
	w.dirsMu.Lock()
	for _, key := range keys {
		dir := w.shard(key)
		if _, ok := w.shards.Load(dir); ok {
			continue
		}
		if w.dirs == nil {
			w.dirs = make(map[string]struct{})
		}
		w.dirs[dir] = struct{}{}
		added = true
	}
	w.dirsMu.Unlock()
	if added {
		w.signal()
	}
}

// makeAhead makes the expected directories, then fills spares, each time
// it is woken, until stop. What it cannot make is left to the writes,
// which make their own and say why.
func (w *writer) makeAhead() {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		for w.prepareOne() {
			select {
			case <-w.stop:
				return
			default:
			}
		}
	}
}

// prepareOne makes one expected directory, or else one spare file, and
// reports whether there was one to make.
func (w *writer) prepareOne() bool {
	w.dirsMu.Lock()
	var dir string
	for d := range w.dirs {
		dir = d
		delete(w.dirs, d)
		break
	}
	w.dirsMu.Unlock()
	if dir != "" {
		_ = w.mkdir(dir)
		return true
	}
	if len(w.spares) == cap(w.spares) {
		return false
	}
	fd, err := unix.Openat(w.dirfd, ".", unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	w.spares <- fd // only this goroutine sends: there is room
	return true
}

// mkdir makes sure the shard directory dir exists, creating it the first
// time it is used. With sync set, a new directory is made durable in the
// root as flatfs does.
func (w *writer) mkdir(dir string) error {
	if _, ok := w.shards.Load(dir); ok {
		return nil
	}
	err := unix.Mkdirat(w.dirfd, dir, 0o755)
	switch {
	case err == nil:
		var st unix.Stat_t
		if unix.Fstatat(w.dirfd, dir, &st, 0) == nil {
			w.added.Add(st.Size)
		}
		if w.sync {
			if err := unix.Fsync(w.dirfd); err != nil {
				return w.pathErr("sync", ".", err)
			}
		}
	case errors.Is(err, unix.EEXIST):
	default:
		return w.pathErr("mkdir", dir, err)
	}
	w.shards.Store(dir, struct{}{})
	return nil
}

// syncDirs syncs the shard directories in dirs.
func (w *writer) syncDirs(dirs map[string]bool) error {
	for dir := range dirs {
		fd, err := unix.Openat(w.dirfd, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return w.pathErr("open", dir, err)
		}
		err = unix.Fsync(fd)
		unix.Close(fd)
		if err != nil {
			return w.pathErr("sync", dir, err)
		}
	}
	return nil
}

// pathErr is err on the file name inside the store.
func (w *writer) pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: filepath.Join(w.root, name), Err: err}
}

// close stops making spares, closes those left (their files vanish) and
// the root directory. It reports the bytes created, for flatfs's disk
// usage count.
func (w *writer) close() int64 {
	close(w.stop)
	w.wg.Wait()
	for len(w.spares) > 0 {
		unix.Close(<-w.spares)
	}
	unix.Close(w.dirfd)
	return w.added.Load()
}
