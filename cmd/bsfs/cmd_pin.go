package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/repo"
)

// The local API of pins and GC.
const (
	pathPinAdd = "/v0/pin/add"
	pathPinRm  = "/v0/pin/rm"
	pathPinLs  = "/v0/pin/ls"
	pathGC     = "/v0/repo/gc"
)

// cacheDir is the directory of the cache's files in a repository.
const cacheDir = "cache"

func newPinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Keep DAGs from eviction and GC",
		Long: `Pins are recursive: a pinned CID keeps its whole DAG on disk, whatever the
cache's quota, and 'bsfs gc' leaves it. What 'bsfs add' adds and what
'bsfs import' imports is pinned.`,
	}
	add := &cobra.Command{
		Use:   "add CID",
		Short: "Pin a DAG, fetching what is not local (with a running daemon)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pinCommand(cmd, args[0], "pinned", node.Pin)
		},
	}
	rm := &cobra.Command{
		Use:   "rm CID",
		Short: "Unpin a DAG: its blocks become evictable",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pinCommand(cmd, args[0], "unpinned", node.Unpin)
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the pinned CIDs, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNode(cmd.Context(), func(n node) error {
				pins, err := n.Pins(cmd.Context())
				if err != nil {
					return err
				}
				for _, c := range pins {
					fmt.Fprintf(cmd.OutOrStdout(), "%s recursive\n", c)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(add, rm, ls)
	return cmd
}

func pinCommand(cmd *cobra.Command, arg, done string, op func(node, context.Context, cid.Cid) error) error {
	c, err := parseCID(arg)
	if err != nil {
		return err
	}
	return withNode(cmd.Context(), func(n node) error {
		err := op(n, cmd.Context(), c)
		if err != nil && !online(n) && isMissing(err) {
			err = fmt.Errorf("%w (no daemon runs, so only local blocks are read: start 'bsfs daemon' to fetch from peers)", err)
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, c)
		return err
	})
}

// cacheOf returns the node's cache, opening it over the repository's own
// store with the configured quota if the daemon did not open it.
func (n *repoNode) cacheOf(ctx context.Context) (*cache.Cache, error) {
	n.cacheMu.Lock()
	defer n.cacheMu.Unlock()
	if n.cache != nil {
		return n.cache, nil
	}
	quota, err := cache.ParseSize(n.repo.Config.Cache.Size)
	if err != nil {
		return nil, fmt.Errorf("config Cache.Size: %w", err)
	}
	dir := filepath.Join(n.repo.Path, cacheDir)
	c, err := cache.Open(ctx, dir, n.repo.Blockstore(), cache.Config{Quota: quota})
	if err != nil {
		return nil, err
	}
	if err := pinRoots(ctx, c, n.repo, dir); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	n.cache = c
	return c, nil
}

// pinRoots pins the roots a repository made before it had pins (whose
// cache directory has no pins file yet), so that GC keeps what was added.
// A root whose DAG is not whole is left unpinned.
func pinRoots(ctx context.Context, c *cache.Cache, r *repo.Repo, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, cache.PinsFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	roots, err := r.Roots()
	if err != nil {
		return err
	}
	for _, root := range roots {
		if err := c.Pin(ctx, root, nil); err != nil && !errors.Is(err, block.ErrNotFound) {
			return err
		}
	}
	return nil
}

// openCache opens the daemon's cache: quota and shared blocks directory
// from the flags, else the config. The shared store is returned to be
// closed after the cache.
func openCache(r *repo.Repo, flags daemonFlags) (*cache.Cache, *blockstore.Blockstore, error) {
	size, sharedDir := r.Config.Cache.Size, r.Config.Cache.SharedBlocks
	if flags.cacheSize != "" {
		size = flags.cacheSize
	}
	if flags.blocks != "" {
		sharedDir = flags.blocks
	}
	quota, err := cache.ParseSize(size)
	if err != nil {
		return nil, nil, fmt.Errorf("cache size: %w", err)
	}
	var st cache.Store = r.Blockstore()
	var shared *blockstore.Blockstore
	if sharedDir != "" {
		if shared, err = blockstore.Open(sharedDir, blockstore.Config{ReadOnly: true}); err != nil {
			return nil, nil, fmt.Errorf("shared blocks: %w", err)
		}
		st = cache.Union{Own: r.Blockstore(), Shared: shared}
	}
	dir := filepath.Join(r.Path, cacheDir)
	c, err := cache.Open(context.Background(), dir, st, cache.Config{Quota: quota})
	if err == nil {
		if err = pinRoots(context.Background(), c, r, dir); err != nil {
			err = errors.Join(err, c.Close())
		}
	}
	if err != nil {
		if shared != nil {
			err = errors.Join(err, shared.Close())
		}
		return nil, nil, err
	}
	return c, shared, nil
}

// Pin pins c recursively: from local blocks, else, online, fetching the
// rest of the DAG from peers.
func (n *repoNode) Pin(ctx context.Context, c cid.Cid) error {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return err
	}
	err = ch.Pin(ctx, c, nil)
	if errors.Is(err, block.ErrNotFound) && n.ex != nil {
		err = ch.Pin(ctx, c, n.ex)
	}
	if err != nil {
		return err
	}
	n.providePinned(ctx, c)
	return nil
}

// Unpin unpins c.
func (n *repoNode) Unpin(ctx context.Context, c cid.Cid) error {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return err
	}
	err = ch.Unpin(ctx, c)
	if errors.Is(err, cache.ErrNotPinned) {
		err = fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return err
}

// Pins lists the pinned roots.
func (n *repoNode) Pins(ctx context.Context) ([]cid.Cid, error) {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return nil, err
	}
	return ch.Pins(), nil
}

// GC deletes the unpinned blocks.
func (n *repoNode) GC(ctx context.Context) (cache.GCResult, error) {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return cache.GCResult{}, err
	}
	return ch.GC(ctx)
}

// registerPinAPI serves pins and GC on the local API.
func registerPinAPI(mux *http.ServeMux, n node) {
	for path, op := range map[string]func(node, context.Context, cid.Cid) error{pathPinAdd: node.Pin, pathPinRm: node.Unpin} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			c, ok := cidArg(w, r)
			if !ok {
				return
			}
			if err := op(n, r.Context(), c); err != nil {
				writeError(w, err)
			}
		})
	}
	mux.HandleFunc("GET "+pathPinLs, func(w http.ResponseWriter, r *http.Request) {
		pins, err := n.Pins(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, cidStrings(pins))
	})
	mux.HandleFunc("POST "+pathGC, func(w http.ResponseWriter, r *http.Request) {
		res, err := n.GC(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, res)
	})
}

func (c *apiClient) Pin(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathPinAdd, argQuery(k.String()), nil)
	return err
}

func (c *apiClient) Unpin(ctx context.Context, k cid.Cid) error {
	_, err := c.do(ctx, http.MethodPost, pathPinRm, argQuery(k.String()), nil)
	return err
}

func (c *apiClient) Pins(ctx context.Context) ([]cid.Cid, error) {
	return c.getCIDs(ctx, pathPinLs)
}

func (c *apiClient) GC(ctx context.Context) (cache.GCResult, error) {
	var res cache.GCResult
	data, err := c.do(ctx, http.MethodPost, pathGC, "", nil)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, fmt.Errorf("daemon API %s: %w", pathGC, err)
	}
	return res, nil
}
