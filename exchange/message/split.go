package message

import "google.golang.org/protobuf/encoding/protowire"

// Split divides m into messages whose encodings for version v are each at
// most max bytes (MaxMessageSize if max <= 0). A message that already fits
// is returned as the only element. Otherwise the parts hold, in order,
// consecutive runs of m's wants, then presences, then blocks; together they
// hold exactly m's items, including those v does not carry. Full is kept on
// the first part only, PendingBytes on the last only. A single item larger
// than max gets a part of its own, which then exceeds max; blocks are at
// most block.MaxSize, so this cannot happen with MaxMessageSize. The parts
// share m's backing arrays (capped, so appending to one copies).
func Split(m *Message, v Version, max int) []*Message {
	sized := m.SizeFor(v).split(max)
	parts := make([]*Message, len(sized))
	for i, p := range sized {
		parts[i] = p.m
	}
	return parts
}

// split is Split of a sized message into sized parts.
func (sm Sized) split(max int) []Sized {
	if max <= 0 {
		max = MaxMessageSize
	}
	if sm.n <= max {
		return []Sized{sm}
	}
	m, v := sm.m, sm.v
	s := splitter{m: m, v: v, max: max, reserve: pendingFieldSize(m.PendingBytes, v)}
	if m.Full {
		s.wl = fullSize
	}
	for i := range m.Wants {
		n := entryFieldSize(&m.Wants[i], v)
		if n == 0 {
			continue
		}
		if s.items > 0 && s.size(s.wl+n, s.rest) > max {
			s.cut(i, 0, 0)
		}
		s.wl += n
		s.items++
	}
	nw := len(m.Wants)
	for i := range m.Presences {
		n := presenceFieldSize(&m.Presences[i], v)
		if n == 0 {
			continue
		}
		if s.items > 0 && s.size(s.wl, s.rest+n) > max {
			s.cut(nw, i, 0)
		}
		s.rest += n
		s.items++
	}
	np := len(m.Presences)
	for i := range m.Blocks {
		n := blockFieldSize(&m.Blocks[i], v)
		if n == 0 {
			continue
		}
		if s.items > 0 && s.size(s.wl, s.rest+n) > max {
			s.cut(nw, np, i)
		}
		s.rest += n
		s.items++
	}
	s.cut(nw, np, len(m.Blocks))
	last := &s.parts[len(s.parts)-1]
	last.m.PendingBytes = m.PendingBytes
	last.n += s.reserve
	return s.parts
}

// splitter tracks the part being filled: its items start at w0, p0 and b0
// in m's slices.
type splitter struct {
	m          *Message
	v          Version
	max        int
	reserve    int // room kept in every part for PendingBytes
	parts      []Sized
	w0, p0, b0 int
	wl         int // the part's wantlist submessage length
	rest       int // the part's blocks and presences, encoded
	items      int // items of the part that v carries
}

// size is the encoded size of a part with a wantlist of wl bytes and rest
// bytes of other fields.
func (s *splitter) size(wl, rest int) int {
	n := rest + s.reserve
	if wl > 0 {
		n += protowire.SizeTag(fieldWantlist) + protowire.SizeBytes(wl)
	}
	return n
}

// cut closes the current part before the items at w, p and b and starts the
// next one. The part is sized without PendingBytes, which only the last
// part gets.
func (s *splitter) cut(w, p, b int) {
	part := &Message{
		Full:      len(s.parts) == 0 && s.m.Full,
		Wants:     subslice(s.m.Wants, s.w0, w),
		Presences: subslice(s.m.Presences, s.p0, p),
		Blocks:    subslice(s.m.Blocks, s.b0, b),
	}
	s.parts = append(s.parts, Sized{m: part, v: s.v, n: s.size(s.wl, s.rest) - s.reserve, wl: s.wl})
	s.w0, s.p0, s.b0 = w, p, b
	s.wl, s.rest, s.items = 0, 0, 0
}

// subslice returns x[i:j] capped at j, or nil when empty.
func subslice[T any](x []T, i, j int) []T {
	if i >= j {
		return nil
	}
	return x[i:j:j]
}
