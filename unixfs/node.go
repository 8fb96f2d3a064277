package unixfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"time"

	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	pb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/bsfs/bsfs/block"
)

// Kind is what a block is read as.
type Kind int

const (
	// KindFile is a UnixFS file: a dag-pb File or Raw node, or a block of
	// the raw codec.
	KindFile Kind = iota
	// KindDirectory is a UnixFS directory, basic or HAMT-sharded.
	KindDirectory
	// KindSymlink is a UnixFS symlink.
	KindSymlink
	// KindOpaque is any other block: another codec, or dag-pb that is not
	// UnixFS. It reads as a file holding the block's bytes.
	KindOpaque
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDirectory:
		return "directory"
	case KindSymlink:
		return "symlink"
	case KindOpaque:
		return "opaque"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Node describes what a CID names, as far as its root block tells.
type Node struct {
	CID  cid.Cid
	Kind Kind
	// Size is a file's content size from its root block alone: its
	// inline data's length plus its blocksizes (which its filesize, if
	// set, must equal); for an opaque block its length; for a symlink its
	// target's length; 0 for a directory.
	Size uint64
	// Mode holds the permission bits (with setuid, setgid and sticky) from
	// UnixFS when present, else 0: the caller picks a default.
	Mode fs.FileMode
	// ModTime is zero when absent.
	ModTime time.Time
	// Target is a symlink's target.
	Target string
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name string
	CID  cid.Cid
	// Size is the link's Tsize: what the DAG it names claims to weigh,
	// blocks and all, as the parent recorded it (not checked).
	Size uint64
}

// Errors of path resolution, for errors.Is.
var (
	// ErrNotFound means a name is not in a directory.
	ErrNotFound = errors.New("no such file or directory")
	// ErrNotDir means a directory was expected.
	ErrNotDir = errors.New("not a directory")
	// ErrNotFile means a file (or opaque block) was expected.
	ErrNotFile = errors.New("not a file")
	// ErrMalformed means a block claims to be UnixFS but breaks its rules.
	ErrMalformed = errors.New("malformed UnixFS DAG")
)

// hamtMurmur3 is the only HAMT hash function UnixFS defines:
// murmur3-x64-64.
const hamtMurmur3 = 0x22

// maxFanout bounds a HAMT shard's width, as boxo does.
const maxFanout = 1 << 10

// link is a dag-pb link.
type link struct {
	name string
	cid  cid.Cid
	size uint64 // Tsize: the linked DAG's cumulative size
}

// decoded is a block read as UnixFS.
type decoded struct {
	node  Node
	links []link
	// data is a file's inline content (the leaf's bytes for raw and
	// opaque blocks), placed before its children's.
	data []byte
	// sizes are a file's blocksizes, one per link.
	sizes  []uint64
	fanout int // HAMT shards only
}

// isHAMT reports whether d is a HAMT shard.
func (d *decoded) isHAMT() bool { return d.fanout > 0 }

// decode reads a block. Anything that is not UnixFS is KindOpaque; a block
// that is UnixFS but malformed is an error wrapping ErrMalformed.
func decode(b block.Block) (*decoded, error) {
	switch b.CID.Prefix().Codec {
	case cid.Raw:
		return &decoded{node: Node{CID: b.CID, Kind: KindFile, Size: uint64(len(b.Data))}, data: b.Data}, nil
	case cid.DagProtobuf:
	default:
		return opaque(b), nil
	}
	pn, err := merkledag.DecodeProtobuf(b.Data)
	if err != nil {
		return opaque(b), nil
	}
	var fsd pb.Data
	if err := proto.Unmarshal(pn.Data(), &fsd); err != nil {
		return opaque(b), nil
	}
	d := &decoded{node: Node{CID: b.CID}}
	for _, l := range pn.Links() {
		d.links = append(d.links, link{name: l.Name, cid: l.Cid, size: l.Size})
	}
	if perms := fsd.GetMode() & 0xFFF; perms != 0 {
		d.node.Mode = files.UnixPermsToModePerms(perms)
	}
	d.node.ModTime = modTime(fsd.GetMtime())
	switch fsd.GetType() {
	case pb.Data_File, pb.Data_Raw:
		d.node.Kind = KindFile
		d.data = fsd.GetData()
		d.sizes = fsd.GetBlocksizes()
		if len(d.sizes) != len(d.links) {
			return nil, fmt.Errorf("%w: %s has %d links and %d blocksizes", ErrMalformed, b.CID, len(d.links), len(d.sizes))
		}
		total := uint64(len(d.data))
		for _, s := range d.sizes {
			var carry uint64
			if total, carry = bits.Add64(total, s, 0); carry != 0 {
				return nil, fmt.Errorf("%w: %s: blocksizes overflow", ErrMalformed, b.CID)
			}
		}
		if fsd.Filesize != nil && *fsd.Filesize != total {
			return nil, fmt.Errorf("%w: %s: filesize %d, data and blocksizes add up to %d", ErrMalformed, b.CID, *fsd.Filesize, total)
		}
		d.node.Size = total
	case pb.Data_Directory:
		d.node.Kind = KindDirectory
	case pb.Data_HAMTShard:
		d.node.Kind = KindDirectory
		if fsd.GetHashType() != hamtMurmur3 {
			return nil, fmt.Errorf("%w: %s: HAMT hash function 0x%x, only murmur3 (0x22) is defined", ErrMalformed, b.CID, fsd.GetHashType())
		}
		f := fsd.GetFanout()
		if f < 8 || f > maxFanout || f&(f-1) != 0 {
			return nil, fmt.Errorf("%w: %s: HAMT fanout %d", ErrMalformed, b.CID, f)
		}
		d.fanout = int(f)
	case pb.Data_Symlink:
		d.node.Kind = KindSymlink
		d.node.Target = string(fsd.GetData())
		d.node.Size = uint64(len(d.node.Target))
	default:
		return opaque(b), nil
	}
	return d, nil
}

func opaque(b block.Block) *decoded {
	return &decoded{node: Node{CID: b.CID, Kind: KindOpaque, Size: uint64(len(b.Data))}, data: b.Data}
}

// modTime converts a UnixFS mtime; invalid nanoseconds make it absent.
func modTime(ts *pb.IPFSTimestamp) time.Time {
	if ts == nil || ts.Seconds == nil {
		return time.Time{}
	}
	if ts.Nanos == nil {
		return time.Unix(*ts.Seconds, 0)
	}
	if n := *ts.Nanos; n >= 1 && n <= 999_999_999 {
		return time.Unix(*ts.Seconds, int64(n))
	}
	return time.Time{}
}
