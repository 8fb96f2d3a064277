// Package blockstore keeps blocks in a flatfs directory laid out exactly as
// Kubo lays out its repository's blocks/ directory: sharded next-to-last/2,
// each block in a file named after the base32 of its multihash. A Kubo
// blocks/ directory can therefore be opened as it is, and a CIDv0 and a
// CIDv1 over the same multihash are one stored block.
//
// A new block is written to an unnamed file in its shard directory and
// linked under its name once complete (through go-ds-flatfs, which renames
// a temporary file into place, where the system cannot do that), so a
// crash never leaves a half-written block under a block's name. Every read is checked against the CID it was
// asked for (unless Config.NoVerify): corrupted data is reported with
// block.ErrHashMismatch and never returned as good.
package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"

	"github.com/bsfs/bsfs/block"
)

// Errors returned by the Blockstore, for errors.Is.
var (
	// ErrLayout means a directory is not a flatfs blockstore sharded the
	// way Kubo shards one.
	ErrLayout = errors.New("not a Kubo-compatible flatfs blockstore")
	// ErrReadOnly is returned by writes to a store opened read-only.
	ErrReadOnly = errors.New("blockstore is read-only")
	// ErrClosed is returned by calls on a closed Blockstore.
	ErrClosed = errors.New("blockstore closed")
)

// Stats are counters of a Blockstore's work since Open.
type Stats struct {
	Gets           uint64 // Get calls for stored (non-identity) blocks
	Misses         uint64 // Gets that found no block
	HashMismatches uint64 // Gets whose stored data did not hash to the CID
	Puts           uint64 // blocks written
	PutsSkipped    uint64 // blocks not written because already stored
	Deletes        uint64 // blocks deleted
	BytesRead      uint64 // bytes returned by Get
	BytesWritten   uint64 // bytes of blocks written
}

// maxSyncing bounds the blocks PutMany writes at once with sync on: each
// waits for the disk most of the time.
const maxSyncing = 16

// counters holds Stats as atomics.
type counters struct {
	gets, misses, mismatches, puts, putsSkipped, deletes, bytesRead, bytesWritten atomic.Uint64
}

// Blockstore stores blocks in a flatfs directory. It is safe for concurrent
// use.
type Blockstore struct {
	// read-only after Open, no lock
	cfg   Config
	files files
	ds    *flatfs.Datastore // nil when cfg.ReadOnly
	w     *writer           // nil when cfg.ReadOnly
	done  chan struct{}     // closed by Close: stops AllKeys walkers

	// mu is held shared by every operation and exclusively by Close, so
	// Close waits for the operations in flight.
	mu     sync.RWMutex
	closed bool // guarded by mu

	walkers sync.WaitGroup // AllKeys goroutines
	// suspect holds the keys whose stored data failed verification: Put
	// rewrites them even though a file is present.
	suspect sync.Map // string -> struct{}
	stats   counters
}

// Open opens the blockstore in dir. A missing or empty dir is created as a
// new flatfs store (with its SHARDING file), unless cfg.ReadOnly. A
// non-empty dir must hold a SHARDING file naming Kubo's next-to-last/2
// sharding; otherwise Open fails with ErrLayout and leaves the directory as
// it is.
func Open(dir string, cfg Config) (*Blockstore, error) {
	empty, err := isEmptyDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blockstore %s: %w", dir, err)
	}
	if empty && !cfg.ReadOnly {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("blockstore: %w", err)
		}
		// Create writes SHARDING with O_EXCL, so a concurrent creator of
		// the same directory cannot make two different files.
		if err := flatfs.Create(dir, shardID); err != nil && !errors.Is(err, flatfs.ErrDatastoreExists) {
			return nil, fmt.Errorf("blockstore: creating %s: %w", dir, err)
		}
		if cfg.ShardsAhead {
			if err := makeShards(dir); err != nil {
				return nil, fmt.Errorf("blockstore: creating %s: %w", dir, err)
			}
		}
	}
	shard, err := checkLayout(dir)
	if err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	b := &Blockstore{
		cfg:   cfg,
		files: files{root: dir, shard: shard},
		done:  make(chan struct{}),
	}
	if !cfg.ReadOnly {
		b.ds, err = flatfs.Open(dir, !cfg.NoSync)
		if err != nil {
			return nil, fmt.Errorf("blockstore: opening %s: %w", dir, err)
		}
		if b.w, err = newWriter(dir, shard, !cfg.NoSync); err != nil {
			_ = b.ds.Close()
			return nil, fmt.Errorf("blockstore: opening %s: %w", dir, err)
		}
	}
	return b, nil
}

// dsKey is the flatfs datastore key of c's block.
func dsKey(c cid.Cid) string { return Key(c.Hash()) }

// begin takes the shared lock for one operation and checks that the store
// is open and ctx is live. The caller must call b.mu.RUnlock when begin
// returns nil.
func (b *Blockstore) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Get returns the block c names. Blocks whose bytes the CID tells (identity
// CIDs, the empty block) are answered from the CID.
// A block that is not stored is an error wrapping block.ErrNotFound; stored
// data that does not hash to c is an error wrapping block.ErrHashMismatch
// and its bytes are not returned. The returned block's CID is c.
func (b *Blockstore) Get(ctx context.Context, c cid.Cid) (block.Block, error) {
	if err := b.begin(ctx); err != nil {
		return block.Block{}, err
	}
	defer b.mu.RUnlock()
	if err := block.CheckCID(c); err != nil {
		return block.Block{}, err
	}
	if blk, ok := block.Inline(c); ok {
		return blk, nil
	}
	b.stats.gets.Add(1)
	key := dsKey(c)
	data, err := b.files.read(key)
	if err != nil {
		if errors.Is(err, block.ErrNotFound) {
			b.stats.misses.Add(1)
		}
		return block.Block{}, fmt.Errorf("get %s: %w", c, err)
	}
	if b.cfg.NoVerify {
		b.stats.bytesRead.Add(uint64(len(data)))
		return block.Block{CID: c, Data: data}, nil
	}
	blk, err := block.Verified(c, data)
	if err != nil {
		if errors.Is(err, block.ErrHashMismatch) {
			b.stats.mismatches.Add(1)
			b.suspect.Store(key, struct{}{})
			return block.Block{}, fmt.Errorf("get %s: stored data is corrupt (%s): %w", c, b.files.path(key), err)
		}
		return block.Block{}, fmt.Errorf("get %s: %w", c, err)
	}
	b.stats.bytesRead.Add(uint64(len(data)))
	return blk, nil
}

// Has reports whether the block c names is stored (blocks the CID tells,
// see block.Inline, always are). It does not read or verify the data.
func (b *Blockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := b.begin(ctx); err != nil {
		return false, err
	}
	defer b.mu.RUnlock()
	if err := block.CheckCID(c); err != nil {
		return false, err
	}
	if _, ok := block.Inline(c); ok {
		return true, nil
	}
	_, err := b.files.size(dsKey(c))
	if errors.Is(err, block.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetSize returns the size of the block c names, without reading or
// verifying it. A block that is not stored is block.ErrNotFound.
func (b *Blockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if err := b.begin(ctx); err != nil {
		return 0, err
	}
	defer b.mu.RUnlock()
	if err := block.CheckCID(c); err != nil {
		return 0, err
	}
	if blk, ok := block.Inline(c); ok {
		return len(blk.Data), nil
	}
	n, err := b.files.size(dsKey(c))
	if err != nil {
		return 0, fmt.Errorf("get size %s: %w", c, err)
	}
	return n, nil
}

// Put verifies blk, unless it was checked when built, and stores it.
// Blocks the CID tells (see block.Inline) are verified and not stored. A block already stored is
// not rewritten, unless a Get found its stored data corrupt.
func (b *Blockstore) Put(ctx context.Context, blk block.Block) error {
	if err := b.begin(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	if b.cfg.ReadOnly {
		return ErrReadOnly
	}
	key, w, err := b.prepare(blk)
	if err != nil || w == skip {
		return err
	}
	if err := b.store(ctx, key, w, blk.Data, nil); err != nil {
		return fmt.Errorf("put %s: %w", blk.CID, b.storing(err))
	}
	b.written(key, len(blk.Data))
	return nil
}

// Expect tells the store that the blocks cids may be put soon, as when
// they are asked of peers: the directories they go in are made in the
// background if they are not there yet, so that their writes need not
// wait for that. It does not wait itself.
func (b *Blockstore) Expect(cids []cid.Cid) {
	if b.cfg.ReadOnly {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	keys := make([]string, 0, len(cids))
	for _, c := range cids {
		if _, ok := block.Inline(c); !ok && block.CheckCID(c) == nil {
			keys = append(keys, dsKey(c))
		}
	}
	b.w.expect(keys)
}

// write tells how a block is written.
type write int

const (
	skip    write = iota // stored already
	create               // no file yet
	replace              // a file is there but its data is not the block's
)

// prepare verifies blk, unless already checked, and reports its key and how it must be written.
func (b *Blockstore) prepare(blk block.Block) (key string, w write, err error) {
	if !blk.Checked() {
		if _, err := block.Verified(blk.CID, blk.Data); err != nil {
			return "", skip, fmt.Errorf("put: %w", err)
		}
	}
	if _, ok := block.Inline(blk.CID); ok {
		return "", skip, nil
	}
	key = dsKey(blk.CID)
	n, err := b.files.size(key)
	switch {
	case errors.Is(err, block.ErrNotFound):
		return key, create, nil
	case err != nil:
		return key, replace, nil
	}
	if _, bad := b.suspect.Load(key); bad || n != len(blk.Data) {
		return key, replace, nil
	}
	b.stats.putsSkipped.Add(1)
	return key, skip, nil
}

// store writes the block file for key. New files are written by the
// store's writer, the others by flatfs. With sync on, the directories of
// new files are added to dirs to be synced by the caller, unless dirs is
// nil.
func (b *Blockstore) store(ctx context.Context, key string, w write, data []byte, dirs map[string]bool) error {
	if w == create {
		if err := b.w.create(key, data, dirs); !errors.Is(err, errFlatfs) {
			return err
		}
	}
	return b.ds.Put(ctx, ds.RawKey("/"+key), data)
}

// storing names the store's directory in a write error. The errors name
// the file written, which may be a temporary file gone once the write
// failed; the directory tells which disk is full or failing.
func (b *Blockstore) storing(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("storing in %s: %s: %w", b.files.root, pe.Op, pe.Err)
	}
	return fmt.Errorf("storing in %s: %w", b.files.root, err)
}

// written records that the block under key, n bytes, is now on disk.
func (b *Blockstore) written(key string, n int) {
	b.suspect.Delete(key)
	b.stats.puts.Add(1)
	b.stats.bytesWritten.Add(uint64(n))
}

// PutMany verifies every block, then writes those not yet stored. If any
// block fails verification nothing is written; a write that fails (a full
// disk) fails the call, and the blocks written by then stay stored. The
// blocks are written a few at a time; with sync on, each directory written
// to is synced once, at the end.
func (b *Blockstore) PutMany(ctx context.Context, blks []block.Block) error {
	if err := b.begin(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	if b.cfg.ReadOnly {
		return ErrReadOnly
	}
	type pending struct {
		key  string
		w    write
		data []byte
	}
	var todo []pending
	seen := make(map[string]bool, len(blks))
	for i, blk := range blks {
		key, w, err := b.prepare(blk)
		if err != nil {
			return fmt.Errorf("block %d of %d: %w", i, len(blks), err)
		}
		if w != skip && !seen[key] {
			seen[key] = true
			todo = append(todo, pending{key, w, blk.Data})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	// Blocks are written by a few goroutines: the system's work for a new
	// file and, with sync on, the waits for the disk overlap.
	workers := runtime.GOMAXPROCS(0)
	if !b.cfg.NoSync {
		workers = maxSyncing
	}
	workers = min(workers, len(todo))
	dirs := make([]map[string]bool, workers) // to sync, per worker
	var (
		next   atomic.Int64
		failed atomic.Bool
		errs   = make([]error, workers)
		wg     sync.WaitGroup
	)
	for i := range workers {
		if !b.cfg.NoSync {
			dirs[i] = make(map[string]bool)
		}
		wg.Go(func() {
			for j := int(next.Add(1)) - 1; j < len(todo) && !failed.Load(); j = int(next.Add(1)) - 1 {
				p := todo[j]
				if errs[i] = b.store(ctx, p.key, p.w, p.data, dirs[i]); errs[i] != nil {
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("put many: %w", b.storing(err))
		}
	}
	for _, d := range dirs[1:] {
		maps.Copy(dirs[0], d)
	}
	if err := b.w.syncDirs(dirs[0]); err != nil {
		return fmt.Errorf("put many: %w", b.storing(err))
	}
	for _, p := range todo {
		b.written(p.key, len(p.data))
	}
	return nil
}

// Delete removes the block c names. A block that is not stored is
// block.ErrNotFound. Identity blocks are never stored; deleting one does
// nothing.
func (b *Blockstore) Delete(ctx context.Context, c cid.Cid) error {
	if err := b.begin(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	if b.cfg.ReadOnly {
		return ErrReadOnly
	}
	if err := block.CheckCID(c); err != nil {
		return err
	}
	if block.IsIdentity(c) {
		return nil
	}
	key := dsKey(c)
	if _, err := b.files.size(key); err != nil {
		return fmt.Errorf("delete %s: %w", c, err)
	}
	if err := b.ds.Delete(ctx, ds.RawKey("/"+key)); err != nil {
		return fmt.Errorf("delete %s: %w", c, err)
	}
	b.suspect.Delete(key)
	b.stats.deletes.Add(1)
	return nil
}

// Stats returns the store's counters.
func (b *Blockstore) Stats() Stats {
	s := &b.stats
	return Stats{
		Gets:           s.gets.Load(),
		Misses:         s.misses.Load(),
		HashMismatches: s.mismatches.Load(),
		Puts:           s.puts.Load(),
		PutsSkipped:    s.putsSkipped.Load(),
		Deletes:        s.deletes.Load(),
		BytesRead:      s.bytesRead.Load(),
		BytesWritten:   s.bytesWritten.Load(),
	}
}

// Close waits for the operations in flight and the AllKeys listings, then
// closes the flatfs datastore and adds the blocks written outside it to the
// disk usage it records. Calls after Close fail with ErrClosed.
func (b *Blockstore) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.walkers.Wait()
	if b.ds == nil {
		return nil
	}
	added := b.w.close()
	if err := b.ds.Close(); err != nil {
		return err
	}
	return addDiskUsage(b.files.root, added, !b.cfg.NoSync)
}
