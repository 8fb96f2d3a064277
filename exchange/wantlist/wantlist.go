// Package wantlist holds a list of wanted blocks: what we ask a peer for,
// or what a peer asked us for. It is plain data, which the message package
// carries on the wire. A Wantlist has no locks: its holder guards it, as
// the decision engine does with its mutex.
package wantlist

import (
	"cmp"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// WantType says what a want asks for.
type WantType int32

// The want types, with their wire values.
const (
	WantBlock WantType = 0 // send the block
	WantHave  WantType = 1 // say whether you have the block (Bitswap 1.2.0 only)
)

// Entry is one want: a CID, its priority (higher first), what is wanted,
// and whether a missing block should be answered with DONT_HAVE.
type Entry struct {
	CID          cid.Cid
	Priority     int32
	WantType     WantType
	SendDontHave bool
}

// Wantlist is a set of entries keyed by CID (version and codec included,
// so a CIDv0 and a CIDv1 of the same multihash are distinct wants). The
// zero value is not usable; call New.
type Wantlist struct {
	entries map[string]Entry
}

// New returns an empty wantlist.
func New() *Wantlist {
	return &Wantlist{entries: make(map[string]Entry)}
}

// Add merges e into the list and reports whether the list changed. An
// existing entry takes e's priority; its type only ever moves from
// WantHave to WantBlock, never back; SendDontHave, once set, stays set.
func (w *Wantlist) Add(e Entry) bool {
	k := e.CID.KeyString()
	old, ok := w.entries[k]
	if !ok {
		w.entries[k] = e
		return true
	}
	merged := old
	merged.Priority = e.Priority
	if e.WantType == WantBlock {
		merged.WantType = WantBlock
	}
	merged.SendDontHave = old.SendDontHave || e.SendDontHave
	if merged == old {
		return false
	}
	w.entries[k] = merged
	return true
}

// Remove deletes the entry for c, whatever its type, and reports whether
// there was one.
func (w *Wantlist) Remove(c cid.Cid) bool {
	k := c.KeyString()
	if _, ok := w.entries[k]; !ok {
		return false
	}
	delete(w.entries, k)
	return true
}

// RemoveType deletes the entry for c only if its type is t, and reports
// whether it did: removing WantHave leaves a WantBlock in place, and
// removing WantBlock leaves a WantHave in place (use Remove for both).
func (w *Wantlist) RemoveType(c cid.Cid, t WantType) bool {
	k := c.KeyString()
	if e, ok := w.entries[k]; !ok || e.WantType != t {
		return false
	}
	delete(w.entries, k)
	return true
}

// Get returns the entry for c.
func (w *Wantlist) Get(c cid.Cid) (Entry, bool) {
	e, ok := w.entries[c.KeyString()]
	return e, ok
}

// Has reports whether c is wanted.
func (w *Wantlist) Has(c cid.Cid) bool {
	_, ok := w.entries[c.KeyString()]
	return ok
}

// Len returns the number of entries.
func (w *Wantlist) Len() int { return len(w.entries) }

// Entries returns a new slice of the entries, sorted by priority, highest
// first, then by CID bytes.
func (w *Wantlist) Entries() []Entry {
	out := make([]Entry, 0, len(w.entries))
	for _, e := range w.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return strings.Compare(a.CID.KeyString(), b.CID.KeyString())
	})
	return out
}

// Clear removes every entry.
func (w *Wantlist) Clear() { clear(w.entries) }
