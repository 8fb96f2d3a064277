package unixfs

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spaolacci/murmur3"

	"github.com/bsfs/bsfs/block"
)

// A HAMT shard's links are named by the hex index of their slot (upper
// case, zero-padded to the width of fanout-1): the name alone for a
// sub-shard, followed by the entry's name for an entry. The slot of a name
// at each level is the next log2(fanout) bits, most significant first, of
// the murmur3-x64-64 hash of the name.

// padLen is the width of a shard's slot prefix.
func padLen(fanout int) int { return len(fmt.Sprintf("%X", fanout-1)) }

// hamtHash returns the 8 hash bytes of name that the slots are read from.
func hamtHash(name string) []byte {
	h := murmur3.New64()
	h.Write([]byte(name))
	return h.Sum(nil)
}

// hashBits reads bits from a hash, most significant first.
type hashBits struct {
	b    []byte
	used int
}

// next returns the next n bits, or false when the hash is exhausted.
func (h *hashBits) next(n int) (int, bool) {
	if h.used+n > len(h.b)*8 {
		return 0, false
	}
	v := 0
	for range n {
		bit := h.b[h.used/8] >> (7 - h.used%8) & 1
		v = v<<1 | int(bit)
		h.used++
	}
	return v, true
}

// lookupHAMT follows the hashed path of name from the root shard d.
func (r *Reader) lookupHAMT(ctx context.Context, d *decoded, name string) (DirEntry, error) {
	root := d.node.CID
	hb := &hashBits{b: hamtHash(name)}
	for {
		slot, ok := hb.next(bits.TrailingZeros(uint(d.fanout)))
		if !ok {
			return DirEntry{}, fmt.Errorf("%w: %s: sharded directory deeper than its hash", ErrMalformed, root)
		}
		pad := padLen(d.fanout)
		prefix := fmt.Sprintf("%0*X", pad, slot)
		var next cid.Cid
		for _, l := range d.links {
			if !strings.HasPrefix(l.name, prefix) {
				continue
			}
			if len(l.name) > pad {
				if l.name[pad:] == name {
					return DirEntry{Name: name, CID: l.cid, Size: l.size}, nil
				}
				return DirEntry{}, fmt.Errorf("%s in %s: %w", name, root, ErrNotFound)
			}
			next = l.cid
			break
		}
		if !next.Defined() {
			return DirEntry{}, fmt.Errorf("%s in %s: %w", name, root, ErrNotFound)
		}
		if err := shardLink(root, next); err != nil {
			return DirEntry{}, err
		}
		sub, err := r.get(ctx, next)
		if err != nil {
			return DirEntry{}, err
		}
		if !sub.isHAMT() {
			return DirEntry{}, fmt.Errorf("%w: %s: shard link to %s, which is not a shard", ErrMalformed, root, next)
		}
		d = sub
	}
}

// readHAMT lists the sharded directory whose root shard is d, fetching
// each level's sub-shards together. A shard reached twice makes the DAG
// malformed (a valid HAMT cannot hold one twice): walking it again would
// cost as much again, and a getter that lies about blocks could make the
// walk a loop.
func (r *Reader) readHAMT(ctx context.Context, d *decoded) ([]DirEntry, error) {
	root := d.node.CID
	var out []DirEntry
	level := []*decoded{d}
	seen := map[string]bool{block.Key(root): true}
	for depth := 0; len(level) > 0; depth++ {
		// A 64-bit hash allows at most 64/3 levels of the narrowest fanout.
		if depth > 64/3 {
			return nil, fmt.Errorf("%w: %s: sharded directory deeper than its hash", ErrMalformed, root)
		}
		var shards []cid.Cid
		for _, s := range level {
			pad := padLen(s.fanout)
			for _, l := range s.links {
				switch {
				case len(l.name) < pad:
					return nil, fmt.Errorf("%w: %s: shard link name %q", ErrMalformed, root, l.name)
				case len(l.name) == pad:
					if err := shardLink(root, l.cid); err != nil {
						return nil, err
					}
					k := block.Key(l.cid)
					if seen[k] {
						return nil, fmt.Errorf("%w: %s: shard %s reached twice", ErrMalformed, root, l.cid)
					}
					seen[k] = true
					shards = append(shards, l.cid)
				default:
					out = append(out, DirEntry{Name: l.name[pad:], CID: l.cid, Size: l.size})
				}
			}
		}
		if len(shards) == 0 {
			break
		}
		blocks, err := r.fetchMany(ctx, shards)
		if err != nil {
			return nil, err
		}
		level = level[:0]
		for _, c := range shards {
			b, ok := blocks[block.Key(c)]
			if !ok {
				return nil, missing(ctx, c)
			}
			sub, err := decode(b)
			if err != nil {
				return nil, err
			}
			if !sub.isHAMT() {
				return nil, fmt.Errorf("%w: %s: shard link to %s, which is not a shard", ErrMalformed, root, c)
			}
			level = append(level, sub)
		}
	}
	slices.SortFunc(out, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// shardLink checks that a shard's link to a sub-shard is a CID bsfs can
// fetch: one it cannot makes the directory malformed.
func shardLink(root, c cid.Cid) error {
	if err := block.CheckCID(c); err != nil {
		return fmt.Errorf("%w: %s: shard link to %s: %w", ErrMalformed, root, c, err)
	}
	return nil
}
