// Package unixfs reads UnixFS DAGs block by block, for the mount and for
// `bsfs cat`, `get` and `ls`, and adds files and directories with boxo's
// importer so that CIDs equal those of `ipfs add --cid-version=1`.
//
// Reading does not use boxo's DagReader: a File fetches only the leaves
// that cover the range asked (their offsets come from the blocksizes of
// the nodes above them), keeps a window of leaves in flight ahead of a
// sequential reader through one GetBlocks call per refill, and shares one
// fetch between concurrent reads of the same leaf. boxo decodes the blocks
// (dag-pb and the UnixFS protobuf); the HAMT lookup follows the hashed path
// of a name (murmur3-x64-64, the shard's fanout) and fetches nothing else.
package unixfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// BlockGetter is where blocks come from: the exchange in a daemon, or an
// API client.
type BlockGetter interface {
	GetBlock(ctx context.Context, c cid.Cid) (block.Block, error)
	// GetBlocks delivers the blocks in any order and ends the stream when
	// all are delivered, or, saying why, when it cannot deliver them all
	// (the error GetBlock of a block left out would give) or ctx ends.
	GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error)
}

// Sessioner is a BlockGetter that can group related fetches (one file's
// DAG) in a session, which learns which peers have them. The session ends
// when ctx does.
type Sessioner interface {
	NewSession(ctx context.Context) BlockGetter
}

// Haser answers whether a block is local without fetching it.
type Haser interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// Defaults of Config.
const (
	DefaultWindow      = 64
	DefaultParallelism = 32
)

// Config tunes a Reader. The zero value gives the defaults.
type Config struct {
	// Window is how many leaves a File keeps in flight ahead of a
	// sequential reader; default 64 (16 MiB of 256 KiB leaves), and at
	// most Window × 256 KiB of them. A File caches at most (Window + 2) ×
	// 256 KiB of leaves, plus up to 1024 intermediate nodes.
	Window int
	// Parallelism bounds the blocks fetched at once when listing and
	// walking directories; default 32.
	Parallelism int
	// Haser, optional, lets File.LocalFraction tell local blocks apart.
	Haser Haser
}

// Reader reads UnixFS DAGs from a BlockGetter. It is safe for concurrent
// use and holds no state besides its configuration.
type Reader struct {
	g   BlockGetter
	cfg Config
}

// New returns a Reader over g.
func New(g BlockGetter, cfg Config) *Reader {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = DefaultParallelism
	}
	return &Reader{g: g, cfg: cfg}
}

// get fetches and decodes one block.
func (r *Reader) get(ctx context.Context, c cid.Cid) (*decoded, error) {
	b, err := r.g.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	return decode(b)
}

// Stat describes c from its root block alone.
func (r *Reader) Stat(ctx context.Context, c cid.Cid) (Node, error) {
	d, err := r.get(ctx, c)
	if err != nil {
		return Node{}, err
	}
	return d.node, nil
}

// StatMany describes each of cids from its root block. The blocks are
// fetched in parallel, at most Config.Parallelism at once, with one
// GetBlocks call per batch. errs[i] is the error of cids[i].
func (r *Reader) StatMany(ctx context.Context, cids []cid.Cid) ([]Node, []error) {
	blocks, errs := r.GetMany(ctx, cids)
	nodes := make([]Node, len(cids))
	for i, b := range blocks {
		if errs[i] == nil {
			nodes[i], errs[i] = Describe(b)
		}
	}
	return nodes, errs
}

// GetMany fetches the blocks of cids as StatMany does and returns them in
// cids' order, for a caller that goes on to read them (OpenBlock). errs[i]
// is the error of cids[i].
func (r *Reader) GetMany(ctx context.Context, cids []cid.Cid) ([]block.Block, []error) {
	out := make([]block.Block, len(cids))
	errs := make([]error, len(cids))
	blocks, err := r.fetchMany(ctx, cids)
	for i, c := range cids {
		b, ok := blocks[block.Key(c)]
		switch {
		case ok:
			out[i] = b
		case err != nil:
			errs[i] = err
		default:
			errs[i] = missing(ctx, c)
		}
	}
	return out, errs
}

// Describe tells what b is, as Stat does for the block it fetches.
func Describe(b block.Block) (Node, error) {
	d, err := decode(b)
	if err != nil {
		return Node{}, err
	}
	return d.node, nil
}

// missing is the error for a block a GetBlocks call did not deliver
// without saying why.
func missing(ctx context.Context, c cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("get block %s: %w", c, err)
	}
	return fmt.Errorf("get block %s: %w", c, block.ErrNotFound)
}

// fetchMany gets the distinct blocks of cids with up to Parallelism in
// flight: batches of a quarter of that, four batches at a time. Blocks
// that are not delivered are absent from the map and the error says why
// (the first batch's to fail, if one said); an invalid CID fails the
// whole call.
func (r *Reader) fetchMany(ctx context.Context, cids []cid.Cid) (map[string]block.Block, error) {
	var want []cid.Cid
	seen := make(map[string]bool, len(cids))
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, err
		}
		if k := block.Key(c); !seen[k] {
			seen[k] = true
			want = append(want, c)
		}
	}
	batch := max(1, r.cfg.Parallelism/4)
	if len(want) <= r.cfg.Parallelism {
		batch = max(1, len(want))
	}
	var (
		mu       sync.Mutex
		out      = make(map[string]block.Block, len(want))
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, max(1, r.cfg.Parallelism/batch))
	)
	for part := range slices.Chunk(want, batch) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			st, err := r.g.GetBlocks(ctx, part)
			if err == nil {
				for b := range st.C() {
					mu.Lock()
					out[block.Key(b.CID)] = b
					mu.Unlock()
				}
				err = st.Err()
			}
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// dir fetches c and checks that it is a directory.
func (r *Reader) dir(ctx context.Context, c cid.Cid) (*decoded, error) {
	d, err := r.get(ctx, c)
	if err != nil {
		return nil, err
	}
	if d.node.Kind != KindDirectory {
		return nil, fmt.Errorf("%s: %w", c, ErrNotDir)
	}
	return d, nil
}

// ReadDir lists the directory dir, basic or HAMT-sharded. A basic
// directory's entries come in its links' order (sorted by the encoder); a
// sharded one's are sorted by name. Shards are fetched level by level, in
// parallel.
func (r *Reader) ReadDir(ctx context.Context, dir cid.Cid) ([]DirEntry, error) {
	d, err := r.dir(ctx, dir)
	if err != nil {
		return nil, err
	}
	return r.readDir(ctx, d)
}

// ReadDirBlock is ReadDir for a directory's root block the caller holds
// (from GetMany): it fetches nothing for the root.
func (r *Reader) ReadDirBlock(ctx context.Context, b block.Block) ([]DirEntry, error) {
	d, err := decode(b)
	if err != nil {
		return nil, err
	}
	if d.node.Kind != KindDirectory {
		return nil, fmt.Errorf("%s: %w", b.CID, ErrNotDir)
	}
	return r.readDir(ctx, d)
}

// readDir lists the directory d.
func (r *Reader) readDir(ctx context.Context, d *decoded) ([]DirEntry, error) {
	if !d.isHAMT() {
		return linkEntries(d), nil
	}
	return r.readHAMT(ctx, d)
}

// linkEntries are d's links as directory entries, in d's order.
func linkEntries(d *decoded) []DirEntry {
	out := make([]DirEntry, len(d.links))
	for i, l := range d.links {
		out[i] = DirEntry{Name: l.name, CID: l.cid, Tsize: l.size}
	}
	return out
}

// Lookup finds name in the directory dir. In a HAMT it fetches only the
// shards on the hashed path of name. A missing name is ErrNotFound.
func (r *Reader) Lookup(ctx context.Context, dir cid.Cid, name string) (DirEntry, error) {
	d, err := r.dir(ctx, dir)
	if err != nil {
		return DirEntry{}, err
	}
	if d.isHAMT() {
		return r.lookupHAMT(ctx, d, name)
	}
	for _, l := range d.links {
		if l.name == name {
			return DirEntry{Name: name, CID: l.cid, Tsize: l.size}, nil
		}
	}
	return DirEntry{}, fmt.Errorf("%s in %s: %w", name, dir, ErrNotFound)
}

// Resolve follows path ("a/b/c.txt"; empty components are skipped) below
// root and describes what it names. Symlinks are not followed.
func (r *Reader) Resolve(ctx context.Context, root cid.Cid, path string) (Node, error) {
	c := root
	for part := range strings.SplitSeq(path, "/") {
		if part == "" {
			continue
		}
		e, err := r.Lookup(ctx, c, part)
		if err != nil {
			if errors.Is(err, ErrNotDir) {
				return Node{}, fmt.Errorf("resolving %q below %s: %w", path, root, err)
			}
			return Node{}, err
		}
		c = e.CID
	}
	return r.Stat(ctx, c)
}
