package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/atomicfile"
)

// PinsFile is the file in a cache's directory listing the pinned roots,
// one CID a line. It exists once anything has been pinned.
const PinsFile = "pins"

// fetchBatch is how many blocks of a DAG Pin asks a Getter for at once.
const fetchBatch = 1024

// ErrNotPinned is returned by Unpin for a root that is not pinned.
var ErrNotPinned = errors.New("not pinned")

// Getter fetches blocks: the exchange, for Pin to fetch a DAG it pins.
type Getter interface {
	// GetBlocks delivers the blocks it has or finds, and ends the stream
	// when all are delivered, when it cannot deliver them all, or when ctx
	// ends.
	GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error)
}

// Pin pins root and its whole DAG, which are then never evicted nor
// collected. With a Getter, the DAG's blocks are fetched through it (and
// held meanwhile, whatever the quota); without one they must all be
// stored. Either way a missing block fails the pin with an error wrapping
// block.ErrNotFound, and nothing is pinned.
func (c *Cache) Pin(ctx context.Context, root cid.Cid, g Getter) error {
	if err := block.CheckCID(root); err != nil {
		return err
	}
	c.pinMu.Lock()
	defer c.pinMu.Unlock()
	var holds []func()
	defer func() {
		for _, release := range holds {
			release()
		}
	}()
	hold := func(cids []cid.Cid) { holds = append(holds, c.Hold(cids...)) }
	keys, err := c.walk(ctx, root, g, hold, true)
	if err != nil {
		return fmt.Errorf("pin %s: %w", root, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if !slices.ContainsFunc(c.roots, root.Equals) {
		roots := append(slices.Clone(c.roots), root)
		if err := writePins(c.dir, roots); err != nil {
			return err
		}
		c.roots = roots
	}
	for k := range keys {
		c.pinned[k] = struct{}{}
		c.dropLocked(k)
	}
	return c.syncLogLocked()
}

// Unpin unpins root. The blocks of its DAG that no other pin keeps become
// evictable, as the most recently used, and count against the quota.
func (c *Cache) Unpin(ctx context.Context, root cid.Cid) error {
	c.pinMu.Lock()
	defer c.pinMu.Unlock()
	c.mu.Lock()
	i := slices.IndexFunc(c.roots, root.Equals)
	roots := slices.Delete(slices.Clone(c.roots), max(i, 0), max(i+1, 0))
	c.mu.Unlock()
	if i < 0 {
		return fmt.Errorf("unpin %s: %w", root, ErrNotPinned)
	}
	pinned, err := c.walkAll(ctx, roots)
	if err != nil {
		return err
	}
	// The blocks no pin keeps: those of root's DAG that are stored.
	freed, err := c.walk(ctx, root, nil, nil, false)
	if err != nil {
		return err
	}
	sizes := make(map[string]int64)
	for k := range freed {
		if _, ok := pinned[k]; ok {
			continue
		}
		if n, err := c.st.GetSize(ctx, keyCID(mh.Multihash(k))); err == nil {
			sizes[k] = int64(n)
		}
	}
	victims, err := c.setPins(roots, pinned, sizes)
	if err != nil {
		return err
	}
	return c.evict(ctx, victims)
}

// setPins makes roots, keeping the pinned keys, the pins, and the blocks
// in freed evictable; it returns the blocks that must go for the quota.
func (c *Cache) setPins(roots []cid.Cid, pinned map[string]struct{}, freed map[string]int64) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if err := writePins(c.dir, roots); err != nil {
		return nil, err
	}
	c.roots, c.pinned = roots, pinned
	for k, n := range freed {
		c.useLocked(k, n)
	}
	return c.victimsLocked(), nil
}

// Pins returns the pinned roots, in the order they were pinned.
func (c *Cache) Pins() []cid.Cid {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.roots)
}

// Pinned reports whether k is kept by a pin.
func (c *Cache) Pinned(k cid.Cid) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pinned[keyOf(k)]
	return ok
}

// DAG returns the CIDs of the stored blocks of root's DAG, root's among
// them when it is stored, as CIDv1 raw of their multihashes (what the DHT
// announces); missing blocks are left out with what is below them.
func (c *Cache) DAG(ctx context.Context, root cid.Cid) ([]cid.Cid, error) {
	if err := block.CheckCID(root); err != nil {
		return nil, err
	}
	keys, err := c.walk(ctx, root, nil, nil, false)
	if err != nil {
		return nil, err
	}
	out := make([]cid.Cid, 0, len(keys))
	for k := range keys {
		out = append(out, keyCID(mh.Multihash(k)))
	}
	return out, nil
}

// GCResult is what GC removed.
type GCResult struct {
	Blocks int
	Bytes  int64
}

// GC deletes every stored block that no pin keeps and no read holds. Adds
// in progress (BeginAdd) finish first, and new ones wait for GC.
func (c *Cache) GC(ctx context.Context) (GCResult, error) {
	c.pinMu.Lock()
	defer c.pinMu.Unlock()
	c.gcMu.Lock()
	defer c.gcMu.Unlock()
	keys, err := c.st.AllKeys(ctx)
	if err != nil {
		return GCResult{}, err
	}
	var res GCResult
	var errs []error
	for h := range keys {
		k := string(h)
		c.mu.Lock()
		_, pinned := c.pinned[k]
		keep := pinned || c.held[k] > 0
		c.mu.Unlock()
		if keep {
			continue
		}
		bc := keyCID(h)
		n, err := c.st.GetSize(ctx, bc)
		if err == nil {
			err = c.st.Delete(ctx, bc)
		}
		if err != nil && !errors.Is(err, block.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		res.Blocks++
		res.Bytes += int64(n)
		c.mu.Lock()
		c.dropLocked(k)
		c.mu.Unlock()
	}
	c.mu.Lock()
	errs = append(errs, c.syncLogLocked())
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// walkAll returns the keys of the stored blocks of the roots' DAGs.
func (c *Cache) walkAll(ctx context.Context, roots []cid.Cid) (map[string]struct{}, error) {
	all := make(map[string]struct{})
	for _, r := range roots {
		keys, err := c.walk(ctx, r, nil, nil, false)
		if err != nil {
			return nil, err
		}
		for k := range keys {
			all[k] = struct{}{}
		}
	}
	return all, nil
}

// walk returns the keys of root's DAG, level by level. dag-pb nodes are
// read for their links; other blocks are leaves (raw, or a codec whose
// links bsfs does not follow). With g, every block is fetched through g
// (hold is told of each level first); without, leaves are only checked
// with Has. strict: a missing block is an error; otherwise it is left out
// (with what is below it).
func (c *Cache) walk(ctx context.Context, root cid.Cid, g Getter, hold func([]cid.Cid), strict bool) (map[string]struct{}, error) {
	keys := make(map[string]struct{})
	level := []cid.Cid{root}
	for len(level) > 0 {
		var todo []cid.Cid
		for _, k := range level {
			if _, ok := block.Inline(k); ok {
				continue
			}
			if _, seen := keys[keyOf(k)]; seen {
				continue
			}
			keys[keyOf(k)] = struct{}{}
			todo = append(todo, k)
		}
		if hold != nil {
			hold(todo)
		}
		nodes, missing, err := c.load(ctx, todo, g)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			if strict {
				return nil, fmt.Errorf("%d blocks of the DAG are missing, %s among them: %w", len(missing), missing[0], block.ErrNotFound)
			}
			for _, k := range missing {
				delete(keys, keyOf(k))
			}
		}
		level = level[:0:0]
		for _, b := range nodes {
			nd, err := merkledag.DecodeProtobuf(b.Data)
			if err != nil {
				return nil, fmt.Errorf("block %s: %w", b.CID, err)
			}
			for _, l := range nd.Links() {
				level = append(level, l.Cid)
			}
		}
	}
	return keys, nil
}

// load returns the dag-pb blocks among cids and those of cids that could
// not be had.
func (c *Cache) load(ctx context.Context, cids []cid.Cid, g Getter) (nodes []block.Block, missing []cid.Cid, err error) {
	isNode := func(k cid.Cid) bool { return k.Prefix().Codec == cid.DagProtobuf }
	if g == nil {
		for _, k := range cids {
			if !isNode(k) {
				has, err := c.st.Has(ctx, k)
				if err != nil {
					return nil, nil, err
				}
				if !has {
					missing = append(missing, k)
				}
				continue
			}
			b, err := c.st.Get(ctx, k)
			switch {
			case errors.Is(err, block.ErrNotFound):
				missing = append(missing, k)
			case err != nil:
				return nil, nil, err
			default:
				nodes = append(nodes, b)
			}
		}
		return nodes, missing, nil
	}
	for batch := range slices.Chunk(cids, fetchBatch) {
		got := make(map[string]bool, len(batch))
		st, err := g.GetBlocks(ctx, batch)
		if err != nil {
			return nil, nil, err
		}
		// The blocks the stream leaves out are missing, whatever it
		// stopped for (its Err).
		for b := range st.C() {
			got[keyOf(b.CID)] = true
			if isNode(b.CID) {
				nodes = append(nodes, b)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		for _, k := range batch {
			if !got[keyOf(k)] {
				missing = append(missing, k)
			}
		}
	}
	return nodes, missing, nil
}

// readPins reads the pinned roots in dir.
func readPins(dir string) ([]cid.Cid, error) {
	data, err := os.ReadFile(filepath.Join(dir, PinsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	var out []cid.Cid
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		c, err := cid.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("cache: %s: %q: %w", filepath.Join(dir, PinsFile), line, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// writePins replaces dir's pins file with roots, atomically.
func writePins(dir string, roots []cid.Cid) error {
	var buf bytes.Buffer
	for _, c := range roots {
		buf.WriteString(c.String() + "\n")
	}
	if err := atomicfile.Write(filepath.Join(dir, PinsFile), buf.Bytes()); err != nil {
		return fmt.Errorf("cache: writing pins: %w", err)
	}
	return nil
}

// keyCID is a CID under which the store finds the block whose multihash
// is h.
func keyCID(h mh.Multihash) cid.Cid { return cid.NewCidV1(cid.Raw, h) }
