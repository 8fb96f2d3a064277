// Command memfile mounts a minimal read-only go-fuse file system served from
// memory: DIR/file of -size bytes and DIR/dir with -files files of 4 KiB.
// It is the ceiling the benchmark holds FUSE mounts against: reading it
// costs the kernel round trips and nothing else. It prints "ready" once
// mounted and unmounts on SIGINT or SIGTERM. With -sync the kernel sends
// reads one at a time per file, as it does to bsfs's mount
// (MountOptions.SyncRead), which keeps Ctrl-C cancelling reads: the
// ceiling of a FUSE read in that mode.
//
//	memfile [-size BYTES] [-files N] [-sync] DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// smallSize is the size of each file in DIR/dir.
const smallSize = 4096

func main() {
	size := flag.Int64("size", 256<<20, "size of DIR/file in bytes")
	files := flag.Int("files", 5000, "number of 4 KiB files in DIR/dir")
	syncRead := flag.Bool("sync", false, "have the kernel send reads synchronously, as bsfs's mount does")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: memfile [-size BYTES] [-files N] [-sync] DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *size, *files, *syncRead); err != nil {
		fmt.Fprintf(os.Stderr, "memfile: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, size int64, files int, syncRead bool) error {
	data := make([]byte, size+int64(files)*smallSize)
	if _, err := io.ReadFull(rand.NewChaCha8([32]byte{}), data); err != nil {
		return err
	}
	root := &root{big: data[:size], small: data[size:], files: files}
	// The kernel may keep names and attributes for a second, as it does
	// by default for FUSE; the benchmark drops its caches anyway.
	timeout := time.Second
	srv, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{FsName: "memfile", Name: "memfile", SyncRead: syncRead},
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Unmount()
	}()
	srv.Wait()
	return nil
}

// root holds "file" and "dir".
type root struct {
	fs.Inode
	big, small []byte
	files      int
}

var _ = (fs.NodeOnAdder)((*root)(nil))

// OnAdd builds the whole tree once, when the root is mounted.
func (r *root) OnAdd(ctx context.Context) {
	r.AddChild("file", r.NewPersistentInode(ctx, &file{data: r.big}, fs.StableAttr{}), false)
	dir := r.NewPersistentInode(ctx, &fs.Inode{}, fs.StableAttr{Mode: syscall.S_IFDIR})
	r.AddChild("dir", dir, false)
	for i := range r.files {
		f := &file{data: r.small[i*smallSize : (i+1)*smallSize]}
		dir.AddChild(fmt.Sprintf("f%05d", i), r.NewPersistentInode(ctx, f, fs.StableAttr{}), false)
	}
}

// file is a read-only file whose bytes are in memory.
type file struct {
	fs.Inode
	data []byte
}

var (
	_ = (fs.NodeOpener)((*file)(nil))
	_ = (fs.NodeReader)((*file)(nil))
	_ = (fs.NodeGetattrer)((*file)(nil))
)

// Open allows reading only.
func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, 0, 0
}

// Read answers from memory.
func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(f.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(f.data)))
	return fuse.ReadResultData(f.data[off:end]), 0
}

// Getattr reports the size and a read-only mode.
func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(len(f.data))
	return 0
}
