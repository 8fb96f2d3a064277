// Package unpack writes UnixFS DAGs out as local data: a file's bytes to a
// writer, a whole tree to disk.
package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/unixfs"
)

// copyBuffer bounds the buffer Copy reads into.
const copyBuffer = 1 << 20

// Copy writes f's content to w, reading it in order, and calls
// progress with the bytes of every write.
func Copy(ctx context.Context, w io.Writer, f *unixfs.File, progress func(int)) error {
	// A buffer no larger than the file: `get` of many small files would
	// otherwise allocate (and clear, and collect) 1 MiB for each.
	buf := make([]byte, max(1, min(copyBuffer, f.Node().Size)))
	for off := int64(0); ; {
		n, err := f.ReadAt(ctx, buf, off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
			progress(n)
		}
		// Only io.EOF itself ends the file: a fetch error may wrap it
		// (net/http reports a daemon gone mid-request as "EOF").
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// WriteTree writes nd, read with r, to dst, which must not exist: a file,
// a directory and everything below it, or a symlink. Files and directories
// get nd's permission bits and mtime when the DAG has them (else 0644 and
// 0755). A name that could escape dst ("..", or one with a slash) fails.
// progress is called with the bytes of files written so far.
func WriteTree(ctx context.Context, r *unixfs.Reader, nd unixfs.Node, dst string, progress func(int64)) error {
	w := &treeWriter{r: r, progress: progress}
	return w.write(ctx, nd, block.Block{}, dst)
}

// treeWriter writes UnixFS nodes to disk.
type treeWriter struct {
	r        *unixfs.Reader
	progress func(int64)
	bytes    int64
}

// write writes nd to dst. root is nd's root block when the caller has
// fetched it already, else the zero Block.
func (w *treeWriter) write(ctx context.Context, nd unixfs.Node, root block.Block, dst string) error {
	mode := fs.FileMode(0o644)
	switch nd.Kind {
	case unixfs.KindSymlink:
		return os.Symlink(nd.Target, dst)
	case unixfs.KindDirectory:
		mode = 0o755
		if err := w.dir(ctx, nd.CID, root, dst); err != nil {
			return err
		}
	default:
		if err := w.file(ctx, nd, root, dst); err != nil {
			return err
		}
	}
	if p := nd.Mode.Perm(); p != 0 {
		mode = p
	}
	if err := os.Chmod(dst, mode); err != nil {
		return err
	}
	if !nd.ModTime.IsZero() {
		return os.Chtimes(dst, nd.ModTime, nd.ModTime)
	}
	return nil
}

// dirBatch is how many of a directory's children dir fetches at once; the
// next batch is fetched while one is written, so at most two batches of
// root blocks are held.
const dirBatch = 64

// fetched is a batch of children's root blocks, in the batch's order.
type fetched struct {
	blocks []block.Block
	errs   []error
}

// dir writes the directory c, whose root block is root when the caller
// has fetched it already (else the zero Block), to dst.
func (w *treeWriter) dir(ctx context.Context, c cid.Cid, root block.Block, dst string) error {
	// Writable while it is filled; write sets its mode after.
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	var ents []unixfs.DirEntry
	var err error
	if root.CID.Defined() {
		ents, err = w.r.ReadDirBlock(ctx, root)
	} else {
		ents, err = w.r.ReadDir(ctx, c)
	}
	if err != nil {
		return err
	}
	cids := make([]cid.Cid, len(ents))
	for i, e := range ents {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return fmt.Errorf("directory %s holds the unsafe name %q", c, e.Name)
		}
		cids[i] = e.CID
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends a fetch ahead when writing fails
	fetch := func(from int) <-chan fetched {
		ch := make(chan fetched, 1)
		wg.Go(func() {
			blocks, errs := w.r.GetMany(ctx, cids[from:min(from+dirBatch, len(cids))])
			ch <- fetched{blocks, errs}
		})
		return ch
	}
	next := fetch(0)
	for from := 0; from < len(ents); from += dirBatch {
		batch := <-next
		if from+dirBatch < len(ents) {
			next = fetch(from + dirBatch)
		}
		for i, b := range batch.blocks {
			e := ents[from+i]
			if err := w.child(ctx, b, batch.errs[i], filepath.Join(dst, e.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// child writes the child whose root block is b (or whose fetch failed
// with err) to dst.
func (w *treeWriter) child(ctx context.Context, b block.Block, err error, dst string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	nd, err := unixfs.Describe(b)
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return w.write(ctx, nd, b, dst)
}

func (w *treeWriter) file(ctx context.Context, nd unixfs.Node, root block.Block, dst string) (err error) {
	var f *unixfs.File
	if root.CID.Defined() {
		f, err = w.r.OpenBlock(root)
	} else {
		f, err = w.r.Open(ctx, nd.CID)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = Copy(ctx, out, f, func(n int) {
		w.bytes += int64(n)
		w.progress(w.bytes)
	})
	return errors.Join(err, out.Close())
}
