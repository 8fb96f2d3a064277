package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/repo"
)

// CacheDir is the directory of the cache's files in a repository.
const CacheDir = "cache"

// cacheOf returns the node's cache, opening it over the repository's own
// store with the configured quota if the daemon did not open it.
func (n *Node) cacheOf(ctx context.Context) (*cache.Cache, error) {
	n.cacheMu.Lock()
	defer n.cacheMu.Unlock()
	if n.cache != nil {
		return n.cache, nil
	}
	quota, err := cache.ParseSize(n.repo.Config.Cache.Size)
	if err != nil {
		return nil, fmt.Errorf("config Cache.Size: %w", err)
	}
	dir := filepath.Join(n.repo.Path, CacheDir)
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
// from opts, else the config. The shared store is returned to be
// closed after the cache.
func openCache(r *repo.Repo, opts Options) (*cache.Cache, *blockstore.Blockstore, error) {
	size, sharedDir := r.Config.Cache.Size, r.Config.Cache.SharedBlocks
	if opts.CacheSize != "" {
		size = opts.CacheSize
	}
	if opts.Blocks != "" {
		sharedDir = opts.Blocks
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
	dir := filepath.Join(r.Path, CacheDir)
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
func (n *Node) Pin(ctx context.Context, c cid.Cid) error {
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
func (n *Node) Unpin(ctx context.Context, c cid.Cid) error {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return err
	}
	err = ch.Unpin(ctx, c)
	if errors.Is(err, cache.ErrNotPinned) {
		err = fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	return err
}

// Pins lists the pinned roots.
func (n *Node) Pins(ctx context.Context) ([]cid.Cid, error) {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return nil, err
	}
	return ch.Pins(), nil
}

// GC deletes the unpinned blocks.
func (n *Node) GC(ctx context.Context) (cache.GCResult, error) {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		return cache.GCResult{}, err
	}
	return ch.GC(ctx)
}
