// Package cache decides which blocks stay on disk. It sits between the
// exchange and the blockstore: blocks fetched from the network are stored
// through it and counted against a quota; when they exceed it the least
// recently used are deleted, never a pinned block and never one a read
// holds (its prefetch window, through Getter). Pins are recursive: a pinned
// root keeps its whole DAG. GC deletes every unpinned block at once.
//
// The cache keeps two files in its directory. "pins" lists the pinned
// roots, one CID a line; it is rewritten atomically (a temporary file
// renamed over it). "recency" is an append-only log of uses and deletions
// of the evictable blocks; Open replays it, so the order survives a
// restart without walking the store, and it is compacted when it grows.
// A block stored outside the cache (added, or written by a crash after the
// log's last flush) is not evictable until GC or an unpin finds it.
//
// Lock order: pinMu, then gcMu, then mu.
package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// DefaultQuota is the quota of a zero Config: 10 GiB.
const DefaultQuota = 10 << 30

// ErrClosed is returned by calls on a closed Cache.
var ErrClosed = errors.New("cache closed")

// Store is the block store a Cache manages.
type Store interface {
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
	GetSize(ctx context.Context, c cid.Cid) (int, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Put(ctx context.Context, b block.Block) error
	Delete(ctx context.Context, c cid.Cid) error
	// AllKeys lists the stored blocks' multihashes, for GC.
	AllKeys(ctx context.Context) (<-chan mh.Multihash, error)
}

// Config tunes a Cache. The zero value has a quota of DefaultQuota.
type Config struct {
	// Quota bounds the bytes of evictable blocks (fetched, not pinned).
	// 0 means DefaultQuota; a negative quota means none.
	Quota int64
}

// Usage is what the cache holds, for statfs and `bsfs stat`.
type Usage struct {
	Quota  int64 // bytes; negative: no quota
	Used   int64 // bytes of evictable blocks
	Blocks int   // evictable blocks
	Pinned int   // pinned blocks
	Held   int   // blocks held by reads
}

// Cache is a Store whose fetched blocks are evicted beyond a quota. It is
// safe for concurrent use; the exchange stores fetched blocks through Put.
type Cache struct {
	// read-only after Open, no lock
	st    Store
	quota int64 // < 0: none
	dir   string

	pinMu sync.Mutex   // serialises Pin, Unpin and GC's walks
	gcMu  sync.RWMutex // held shared by adds, exclusively by GC

	mu     sync.Mutex
	closed bool                     // guarded by mu
	index  map[string]*list.Element // guarded by mu: key -> *entry in lru
	lru    *list.List               // guarded by mu: most recent first
	used   int64                    // guarded by mu: bytes in index
	pinned map[string]struct{}      // guarded by mu: keys of pinned DAGs
	roots  []cid.Cid                // guarded by mu: pinned roots
	held   map[string]int           // guarded by mu: key -> holds
	log    *recencyLog              // guarded by mu
}

// entry is one evictable block.
type entry struct {
	key  string // the multihash, as bytes
	size int64
}

// keyOf is the cache's key of c: its multihash, so that CIDv0 and CIDv1 of
// one block are one entry, as in the store.
func keyOf(c cid.Cid) string { return string(c.Hash()) }

// Open opens the cache over st, keeping its files in dir (created if
// absent). It reads the pins and walks their DAGs in st, and replays the
// recency log.
func Open(ctx context.Context, dir string, st Store, cfg Config) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	quota := cfg.Quota
	if quota == 0 {
		quota = DefaultQuota
	}
	c := &Cache{
		st:     st,
		quota:  quota,
		dir:    dir,
		index:  make(map[string]*list.Element),
		lru:    list.New(),
		held:   make(map[string]int),
		pinned: make(map[string]struct{}),
	}
	roots, err := readPins(dir)
	if err != nil {
		return nil, err
	}
	pinned, err := c.walkAll(ctx, roots)
	if err != nil {
		return nil, err
	}
	c.roots, c.pinned = roots, pinned
	entries, log, err := openRecencyLog(dir)
	if err != nil {
		return nil, err
	}
	c.log = log
	for _, e := range entries { // oldest first
		if _, ok := c.pinned[e.key]; ok {
			continue
		}
		c.index[e.key] = c.lru.PushFront(&entry{key: e.key, size: e.size})
		c.used += e.size
	}
	return c, nil
}

// Get reads c from the store and marks it used.
func (c *Cache) Get(ctx context.Context, k cid.Cid) (block.Block, error) {
	b, err := c.st.Get(ctx, k)
	if err == nil {
		c.touch(keyOf(k))
	}
	return b, err
}

// GetSize returns the size of the stored block k.
func (c *Cache) GetSize(ctx context.Context, k cid.Cid) (int, error) {
	return c.st.GetSize(ctx, k)
}

// Expect tells the store that the blocks cids may be put soon, if it
// prepares for that (see blockstore.Blockstore.Expect).
func (c *Cache) Expect(cids []cid.Cid) { expect(c.st, cids) }

// expect passes Expect on to st if st prepares for blocks.
func expect(st any, cids []cid.Cid) {
	if x, ok := st.(interface{ Expect([]cid.Cid) }); ok {
		x.Expect(cids)
	}
}

// Has reports whether k is stored.
func (c *Cache) Has(ctx context.Context, k cid.Cid) (bool, error) {
	return c.st.Has(ctx, k)
}

// Put stores a fetched block: it becomes the most recently used, and the
// least recently used unpinned, unheld blocks are deleted while the quota
// is exceeded.
func (c *Cache) Put(ctx context.Context, b block.Block) error {
	if _, ok := block.Inline(b.CID); ok {
		return c.st.Put(ctx, b) // verified, not stored
	}
	if err := c.st.Put(ctx, b); err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	k := keyOf(b.CID)
	if _, ok := c.pinned[k]; !ok {
		c.useLocked(k, int64(len(b.Data)))
	}
	victims := c.victimsLocked()
	c.mu.Unlock()
	return c.evict(ctx, victims)
}

// touch makes k the most recently used, if it is evictable.
func (c *Cache) touch(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[k]; ok && !c.closed {
		c.lru.MoveToFront(el)
		c.log.use(k, el.Value.(*entry).size)
	}
}

// useLocked records that k, size bytes, was used now.
func (c *Cache) useLocked(k string, size int64) {
	if el, ok := c.index[k]; ok {
		c.lru.MoveToFront(el)
	} else {
		c.index[k] = c.lru.PushFront(&entry{key: k, size: size})
		c.used += size
	}
	c.log.use(k, size)
}

// dropLocked forgets k.
func (c *Cache) dropLocked(k string) {
	if el, ok := c.index[k]; ok {
		c.used -= el.Value.(*entry).size
		c.lru.Remove(el)
		delete(c.index, k)
		c.log.drop(k)
	}
}

// victimsLocked takes out of the index the least recently used blocks that
// must go for the rest to fit the quota, skipping held ones.
func (c *Cache) victimsLocked() []string {
	if c.quota < 0 || c.used <= c.quota {
		return nil
	}
	var out []string
	for el := c.lru.Back(); el != nil && c.used > c.quota; {
		e := el.Value.(*entry)
		prev := el.Prev()
		if c.held[e.key] == 0 {
			out = append(out, e.key)
			c.dropLocked(e.key)
		}
		el = prev
	}
	return out
}

// evict deletes the victims from the store. A victim already gone is no
// error.
func (c *Cache) evict(ctx context.Context, victims []string) error {
	var errs []error
	for _, k := range victims {
		err := c.st.Delete(context.WithoutCancel(ctx), keyCID(mh.Multihash(k)))
		if err != nil && !errors.Is(err, block.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(victims) > 0 {
		c.mu.Lock()
		errs = append(errs, c.syncLogLocked())
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// syncLogLocked writes the recency log out, compacted if it has grown.
func (c *Cache) syncLogLocked() error {
	if err := c.log.flush(); err != nil {
		return err
	}
	return c.log.compact(len(c.index), c.entriesLocked)
}

// entriesLocked returns the index, least recently used first.
func (c *Cache) entriesLocked() []logEntry {
	out := make([]logEntry, 0, len(c.index))
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*entry)
		out = append(out, logEntry{e.key, e.size})
	}
	return out
}

// Hold keeps cids from eviction until release is called (once). Blocks
// stored while held count against the quota and are evicted after
// release, when the quota needs their room.
func (c *Cache) Hold(cids ...cid.Cid) (release func()) {
	keys := make([]string, 0, len(cids))
	for _, k := range cids {
		if _, ok := block.Inline(k); !ok {
			keys = append(keys, keyOf(k))
		}
	}
	c.mu.Lock()
	for _, k := range keys {
		c.held[k]++
	}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			for _, k := range keys {
				if c.held[k]--; c.held[k] <= 0 {
					delete(c.held, k)
				}
			}
			c.mu.Unlock()
		})
	}
}

// BeginAdd keeps GC from running until end is called, so that blocks
// being added are not deleted before they are pinned.
func (c *Cache) BeginAdd() (end func()) {
	c.gcMu.RLock()
	var once sync.Once
	return func() { once.Do(c.gcMu.RUnlock) }
}

// Usage returns what the cache holds now.
func (c *Cache) Usage() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Usage{Quota: c.quota, Used: c.used, Blocks: len(c.index), Pinned: len(c.pinned), Held: len(c.held)}
}

// Order returns the evictable blocks' multihashes, least recently used
// first: the order in which they would be evicted.
func (c *Cache) Order() []mh.Multihash {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]mh.Multihash, 0, len(c.index))
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		out = append(out, mh.Multihash(el.Value.(*entry).key))
	}
	return out
}

// Close writes the recency log out. It does not close the store.
func (c *Cache) Close() error {
	c.pinMu.Lock()
	defer c.pinMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.log.close()
}
