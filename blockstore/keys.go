package blockstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mh "github.com/multiformats/go-multihash"
)

// AllKeys lists the multihashes of the stored blocks, in no particular
// order, on a channel that is closed when the listing ends: when every
// block is listed, when ctx is done, or when the store is closed. Files
// whose names are not block keys are skipped; a shard directory that cannot
// be read ends the listing early. The caller must drain the channel or
// cancel ctx.
func (b *Blockstore) AllKeys(ctx context.Context) (<-chan mh.Multihash, error) {
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	entries, err := os.ReadDir(b.files.root)
	if err != nil {
		return nil, fmt.Errorf("all keys: %w", err)
	}
	var shards []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			shards = append(shards, filepath.Join(b.files.root, e.Name()))
		}
	}
	out := make(chan mh.Multihash, 64)
	b.walkers.Add(1)
	go func() {
		defer b.walkers.Done()
		defer close(out)
		for _, dir := range shards {
			if !b.listShard(ctx, dir, out) {
				return
			}
		}
	}()
	return out, nil
}

// listShard sends the multihashes of the blocks in one shard directory. It
// reports false when the listing must stop.
func (b *Blockstore) listShard(ctx context.Context, dir string, out chan<- mh.Multihash) bool {
	f, err := os.Open(dir)
	if err != nil {
		return os.IsNotExist(err) // a shard removed meanwhile is empty
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return false
	}
	for _, name := range names {
		h, ok := multihashFromFile(name)
		if !ok {
			continue
		}
		select {
		case out <- h:
		case <-ctx.Done():
			return false
		case <-b.done:
			return false
		}
	}
	return true
}
