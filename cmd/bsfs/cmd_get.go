package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/unixfs"
)

func newGetCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "get CID[/PATH] [-o OUT]",
		Short: "Write a UnixFS file or directory tree to disk",
		Long: `Write a UnixFS file, directory tree or symlink to OUT: by default the
last name of PATH, or the CID when there is no PATH. OUT must not exist.

Files and directories get their UnixFS permission bits and mtime when the
DAG has them (else 0644 and 0755); symlinks are written as symlinks. A
name that could escape OUT ("..", or one with a slash) fails the command.
With a running daemon missing blocks are fetched from its peers;
otherwise only local blocks are read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, sub, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = root.String()
				if base := path.Base(sub); sub != "" && base != "/" && base != "." {
					out = base
				}
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("%s already exists", out)
			}
			ctx := cmd.Context()
			return withReader(ctx, func(r *unixfs.Reader) error {
				nd, err := r.Resolve(ctx, root, sub)
				if err != nil {
					return err
				}
				total := int64(-1)
				if nd.Kind == unixfs.KindFile || nd.Kind == unixfs.KindOpaque {
					total = int64(nd.Size)
				}
				w := &treeWriter{r: r, bar: newProgress(cmd.ErrOrStderr(), total, "fetching")}
				err = w.write(ctx, nd, out)
				w.bar.done()
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "path to write to (must not exist)")
	return cmd
}

// treeWriter writes UnixFS nodes to disk.
type treeWriter struct {
	r     *unixfs.Reader
	bar   progress
	bytes int64
}

func (w *treeWriter) write(ctx context.Context, nd unixfs.Node, dst string) error {
	mode := fs.FileMode(0o644)
	switch nd.Kind {
	case unixfs.KindSymlink:
		return os.Symlink(nd.Target, dst)
	case unixfs.KindDirectory:
		mode = 0o755
		if err := w.dir(ctx, nd.CID, dst); err != nil {
			return err
		}
	default:
		if err := w.file(ctx, nd, dst); err != nil {
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

func (w *treeWriter) dir(ctx context.Context, c cid.Cid, dst string) error {
	// Writable while it is filled; write sets its mode after.
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	ents, err := w.r.ReadDir(ctx, c)
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
	nodes, errs := w.r.StatMany(ctx, cids)
	for i, e := range ents {
		if errs[i] != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dst, e.Name), errs[i])
		}
		if err := w.write(ctx, nodes[i], filepath.Join(dst, e.Name)); err != nil {
			return err
		}
	}
	return nil
}

func (w *treeWriter) file(ctx context.Context, nd unixfs.Node, dst string) (err error) {
	f, err := w.r.Open(ctx, nd.CID)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = copyFile(ctx, out, f, func(n int) {
		w.bytes += int64(n)
		w.bar.set(w.bytes)
	})
	return errors.Join(err, out.Close())
}
