package unixfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// The import settings of `ipfs add --cid-version=1` in Kubo v0.42 with its
// default config: CIDv1 dag-pb nodes over raw leaves, fixed 256 KiB chunks,
// a balanced DAG of at most 174 links a node, and directories turned into
// HAMT shards of fanout 256 once the names and CIDs of their links add up
// to more than 256 KiB.
const (
	chunkSize     = 256 << 10
	linksPerBlock = 174
	hamtFanout    = 256
	hamtThreshold = 256 << 10
)

// cidBuilder makes the CIDv1 (sha2-256) of the dag-pb nodes.
func cidBuilder() cid.Prefix {
	return cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
}

// BlockPutter is where added blocks go.
type BlockPutter interface {
	Put(ctx context.Context, b block.Block) error
}

// AddOptions tunes AddFile and AddPath. The zero value adds like
// `ipfs add --cid-version=1`.
type AddOptions struct {
	// Progress, if set, is called with the count of file bytes read so
	// far, after every chunk.
	Progress func(bytes int64)
	// Added, if set, is called for every file, symlink and directory once
	// stored, with its path relative to the parent of what AddPath was
	// given (`ipfs add` prints these lines); AddFile does not call it.
	Added func(path string, c cid.Cid)
	// Hidden includes files and directories whose name starts with "."
	// below the top directory, which `ipfs add -r` leaves out unless
	// given --hidden.
	Hidden bool
}

// AddFile stores the content of r as a UnixFS file and returns its root.
func AddFile(ctx context.Context, dst BlockPutter, r io.Reader, opts AddOptions) (cid.Cid, error) {
	a := &adder{ds: &dagService{dst: dst, ctx: ctx}, opts: opts}
	nd, err := a.file(ctx, r)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), nil
}

// AddPath stores the file, symlink or directory (recursively) at path and
// returns its root. Symlinks are stored as UnixFS symlinks, never
// followed, and no mode or mtime is recorded, as `ipfs add -r` does.
func AddPath(ctx context.Context, dst BlockPutter, path string, opts AddOptions) (cid.Cid, error) {
	a := &adder{ds: &dagService{dst: dst, ctx: ctx}, opts: opts}
	nd, err := a.path(ctx, path, filepath.Base(filepath.Clean(path)), true)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), nil
}

// adder is one AddFile or AddPath.
type adder struct {
	ds    *dagService
	opts  AddOptions
	total int64 // bytes read, for Progress
	// Tests build small DAGs of several levels with these; zero means
	// Kubo's layout.
	chunk, links int
	dagpbLeaves  bool
}

func (a *adder) file(ctx context.Context, r io.Reader) (ipld.Node, error) {
	if a.opts.Progress != nil {
		r = &progressReader{r: r, a: a}
	}
	chunk, links := int64(chunkSize), linksPerBlock
	if a.chunk > 0 {
		chunk, links = int64(a.chunk), a.links
	}
	params := helpers.DagBuilderParams{
		Dagserv:    a.ds,
		RawLeaves:  !a.dagpbLeaves,
		Maxlinks:   links,
		CidBuilder: cidBuilder(),
	}
	db, err := params.New(chunker.NewSizeSplitter(r, chunk))
	if err != nil {
		return nil, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return nd, nil
}

type progressReader struct {
	r io.Reader
	a *adder
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.a.total += int64(n)
		p.a.opts.Progress(p.a.total)
	}
	return n, err
}

// path adds what is at path under the name rel.
func (a *adder) path(ctx context.Context, path, rel string, top bool) (ipld.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	var nd ipld.Node
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		nd, err = a.file(ctx, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, err
		}
		data, err := ufs.SymlinkData(target)
		if err != nil {
			return nil, err
		}
		pn := merkledag.NodeWithData(data)
		if err := pn.SetCidBuilder(cidBuilder()); err != nil {
			return nil, err
		}
		if err := a.ds.Add(ctx, pn); err != nil {
			return nil, err
		}
		nd = pn
	case fi.IsDir():
		nd, err = a.dir(ctx, path, rel)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: cannot add a %s", path, fi.Mode().Type())
	}
	if a.opts.Added != nil {
		a.opts.Added(rel, nd.Cid())
	}
	return nd, nil
}

func (a *adder) dir(ctx context.Context, path, rel string) (ipld.Node, error) {
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	d, err := uio.NewDirectory(a.ds,
		uio.WithCidBuilder(cidBuilder()),
		uio.WithMaxHAMTFanout(hamtFanout),
		uio.WithSizeEstimationMode(uio.SizeEstimationLinks),
		func(d uio.Directory) { d.SetHAMTShardingSize(hamtThreshold) },
	)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !a.opts.Hidden && strings.HasPrefix(e.Name(), ".") {
			continue
		}
		child, err := a.path(ctx, filepath.Join(path, e.Name()), rel+"/"+e.Name(), false)
		if err != nil {
			return nil, err
		}
		if err := d.AddChild(ctx, e.Name(), child); err != nil {
			return nil, err
		}
	}
	nd, err := d.GetNode()
	if err != nil {
		return nil, err
	}
	if err := a.ds.Add(ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// dagService is the DAGService boxo's importer writes to: nodes become
// blocks for dst. Reading back is supported only when dst can get blocks.
// Every call uses the context of the add, since the importer passes
// context.TODO in places.
type dagService struct {
	dst BlockPutter
	ctx context.Context
}

var _ ipld.DAGService = (*dagService)(nil)

// Add stores nd's block.
func (s *dagService) Add(_ context.Context, nd ipld.Node) error {
	return s.dst.Put(s.ctx, block.Block{CID: nd.Cid(), Data: nd.RawData()})
}

// AddMany stores the nodes' blocks.
func (s *dagService) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := s.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

// blockGetter is what a BlockPutter may also do, for the importer to read
// back a node (a HAMT it reshapes).
type blockGetter interface {
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
}

// Get reads a node back from dst, if dst can.
func (s *dagService) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	g, ok := s.dst.(blockGetter)
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	b, err := g.Get(s.ctx, c)
	if err != nil {
		if errors.Is(err, block.ErrNotFound) {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		return nil, err
	}
	switch c.Prefix().Codec {
	case cid.DagProtobuf:
		pn, err := merkledag.DecodeProtobuf(b.Data)
		if err != nil {
			return nil, err
		}
		if err := pn.SetCidBuilder(c.Prefix()); err != nil {
			return nil, err
		}
		return pn, nil
	case cid.Raw:
		return merkledag.NewRawNodeWPrefix(b.Data, c.Prefix())
	}
	return nil, fmt.Errorf("unixfs: cannot decode %s", c)
}

// GetMany reads nodes back one by one.
func (s *dagService) GetMany(ctx context.Context, cids []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cids))
	for _, c := range cids {
		nd, err := s.Get(ctx, c)
		out <- &ipld.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

// Remove is not supported: added blocks stay.
func (s *dagService) Remove(context.Context, cid.Cid) error { return nil }

// RemoveMany is not supported: added blocks stay.
func (s *dagService) RemoveMany(context.Context, []cid.Cid) error { return nil }
