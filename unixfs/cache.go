package unixfs

import "container/list"

// maxInodes bounds the intermediate nodes a File caches (each at most a few
// KiB: 174 links).
const maxInodes = 1024

// leafCache holds leaves' content within a byte budget, and at most
// keepRead leaves that were read: a sequential reader is done with a leaf
// soon after reading it, and the prefetched ones are what the budget is
// for. Eviction takes the least recently read leaves first, then, if need
// be, the oldest of those prefetched and not read yet. Not safe for
// concurrent use.
type leafCache struct {
	budget   uint64
	keepRead int
	size     uint64                   // bytes held
	reads    int                      // leaves held that were read
	m        map[string]*list.Element // key -> *cachedLeaf in lru
	lru      *list.List               // most recent first
}

type cachedLeaf struct {
	key  string
	data []byte
	read bool // served to a reader: evicted before the prefetched ones
}

func newLeafCache(budget uint64, keepRead int) *leafCache {
	return &leafCache{budget: budget, keepRead: max(1, keepRead), m: make(map[string]*list.Element), lru: list.New()}
}

// has reports whether k is held, without counting it as read.
func (c *leafCache) has(k string) bool { return c.m[k] != nil }

// read returns k's content and marks it read and most recent.
func (c *leafCache) read(k string) ([]byte, bool) {
	e := c.m[k]
	if e == nil {
		return nil, false
	}
	c.lru.MoveToFront(e)
	cl := e.Value.(*cachedLeaf)
	if !cl.read {
		cl.read = true
		c.reads++
		if c.reads > c.keepRead {
			c.evict() // the least recently read: never cl, the most recent
		}
	}
	return cl.data, true
}

// put holds data under k (if k is held already, it only becomes the most
// recent) and evicts until the budget is kept; the newest leaf stays even
// alone over it.
func (c *leafCache) put(k string, data []byte) {
	if e := c.m[k]; e != nil {
		c.lru.MoveToFront(e)
		return
	}
	c.m[k] = c.lru.PushFront(&cachedLeaf{key: k, data: data})
	c.size += uint64(len(data))
	for c.size > c.budget && c.lru.Len() > 1 {
		c.evict()
	}
}

// evict drops the least recently read leaf, or the oldest unread one if
// none was read.
func (c *leafCache) evict() {
	victim := c.lru.Back()
	for e := victim; e != nil; e = e.Prev() {
		if e.Value.(*cachedLeaf).read {
			victim = e
			break
		}
	}
	old := c.lru.Remove(victim).(*cachedLeaf)
	delete(c.m, old.key)
	c.size -= uint64(len(old.data))
	if old.read {
		c.reads--
	}
}

// clear drops every leaf.
func (c *leafCache) clear() {
	c.m = make(map[string]*list.Element)
	c.lru.Init()
	c.size, c.reads = 0, 0
}

// inodeCache holds up to max intermediate nodes, evicting the oldest first.
// Not safe for concurrent use.
type inodeCache struct {
	max   int
	m     map[string]*inode
	order []string // oldest first
}

func newInodeCache(max int) *inodeCache {
	return &inodeCache{max: max, m: make(map[string]*inode)}
}

func (c *inodeCache) get(k string) *inode { return c.m[k] }

// put holds in under k unless k is held already.
func (c *inodeCache) put(k string, in *inode) {
	if c.m[k] != nil {
		return
	}
	if len(c.order) >= c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[k] = in
	c.order = append(c.order, k)
}

// clear drops every node.
func (c *inodeCache) clear() {
	c.m = make(map[string]*inode)
	c.order = nil
}
