package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/unixfs"
)

// lsFlags are ls's options, Kubo's.
type lsFlags struct {
	headers, size, resolveType bool
}

func newLsCmd() *cobra.Command {
	var flags lsFlags
	cmd := &cobra.Command{
		Use:   "ls CID[/PATH]...",
		Short: "List a directory's entries with their CIDs and sizes",
		Long: `List the entries of each UnixFS directory named, sorted by name, one a
line as Kubo's 'ipfs ls' prints them: "<cid> <size> <name>", the size of a
file or symlink in bytes and "-" for a directory, whose name ends in "/".
A file lists the blocks it is made of (without names); a file of one
block lists nothing. With several arguments each listing starts with the
argument and a colon. With a running daemon missing blocks are fetched
from its peers; otherwise only local blocks are read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return withReader(ctx, func(r *unixfs.Reader) error {
				lists := make([][]lsEntry, len(args))
				for i, arg := range args {
					var err error
					if lists[i], err = listRef(ctx, r, arg, flags.size || flags.resolveType); err != nil {
						return err
					}
				}
				return printLs(cmd.OutOrStdout(), args, lists, flags)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&flags.headers, "headers", "v", false, "print table headers (Hash, Size, Name)")
	f.BoolVar(&flags.size, "size", true, "fetch each entry to print its size")
	f.BoolVar(&flags.resolveType, "resolve-type", true, "fetch each entry to tell directories apart")
	return cmd
}

// lsEntry is one line of ls.
type lsEntry struct {
	unixfs.DirEntry
	size uint64 // the size ls shows: a file's content, a raw block's Tsize
	dir  bool
}

// resolveRef returns the CID that CID[/PATH] names.
func resolveRef(ctx context.Context, r *unixfs.Reader, arg string) (cid.Cid, error) {
	root, sub, err := parseRef(arg)
	if err != nil || strings.Trim(sub, "/") == "" {
		return root, err
	}
	nd, err := r.Resolve(ctx, root, sub)
	return nd.CID, err
}

// listRef lists what arg names, sorted by name; with resolve, each dag-pb
// entry is fetched to tell its kind and size (a raw block is a file whose
// size is its link's).
func listRef(ctx context.Context, r *unixfs.Reader, arg string, resolve bool) ([]lsEntry, error) {
	c, err := resolveRef(ctx, r, arg)
	if err != nil {
		return nil, err
	}
	ents, err := r.List(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]lsEntry, len(ents))
	var pb []int // the entries to fetch
	for i, e := range ents {
		out[i].DirEntry = e
		switch e.CID.Prefix().Codec {
		case cid.Raw:
			out[i].size = e.Tsize
		case cid.DagProtobuf:
			pb = append(pb, i)
		}
	}
	if resolve && len(pb) > 0 {
		cids := make([]cid.Cid, len(pb))
		for j, i := range pb {
			cids[j] = ents[i].CID
		}
		nodes, errs := r.StatMany(ctx, cids)
		for j, i := range pb {
			if errs[j] != nil {
				return nil, fmt.Errorf("%s: %w", ents[i].Name, errs[j])
			}
			out[i].dir = nodes[j].Kind == unixfs.KindDirectory
			if nodes[j].Kind == unixfs.KindFile || nodes[j].Kind == unixfs.KindSymlink {
				out[i].size = nodes[j].Size
			}
		}
	}
	slices.SortFunc(out, func(a, b lsEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// printLs writes the listings of args in Kubo's columns.
func printLs(w io.Writer, args []string, lists [][]lsEntry, flags lsFlags) error {
	tw := tabwriter.NewWriter(w, 1, 2, 1, ' ', 0)
	for i, ents := range lists {
		if len(args) > 1 {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "%s:\n", args[i])
		}
		switch {
		case flags.headers && flags.size:
			fmt.Fprintln(tw, "Hash\tSize\tName")
		case flags.headers:
			fmt.Fprintln(tw, "Hash\tName")
		}
		for _, e := range ents {
			name := escNonPrint(e.Name)
			size := strconv.FormatUint(e.size, 10)
			if e.dir {
				name += "/"
				size = "-"
			}
			if flags.size {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.CID, size, name)
			} else {
				fmt.Fprintf(tw, "%s\t%s\n", e.CID, name)
			}
		}
	}
	return tw.Flush()
}

// escNonPrint writes a name holding a backslash or a character that does
// not print as a Go string literal's escapes without the quotes, as Kubo
// does, so that a name cannot move the terminal's cursor.
func escNonPrint(s string) string {
	if !strings.ContainsRune(s, '\\') && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}
