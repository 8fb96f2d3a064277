package unixfs

import (
	"fmt"
	"slices"
	"testing"
)

// keys returns the leaves c holds, most recent first.
func (c *leafCache) keys() []string {
	var out []string
	for e := c.lru.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*cachedLeaf).key)
	}
	return out
}

func checkLeaves(t *testing.T, c *leafCache, want ...string) {
	t.Helper()
	if got := c.keys(); !slices.Equal(got, want) {
		t.Fatalf("leaves %v, want %v (most recent first)", got, want)
	}
	var size uint64
	for _, k := range want {
		size += uint64(len(c.m[k].Value.(*cachedLeaf).data))
	}
	if c.size != size || len(c.m) != len(want) {
		t.Fatalf("size %d and %d in the map, want %d and %d", c.size, len(c.m), size, len(want))
	}
}

func TestLeafCacheBudget(t *testing.T) {
	c := newLeafCache(30, 100)
	c.put("a", make([]byte, 10))
	c.put("b", make([]byte, 10))
	c.put("c", make([]byte, 10))
	checkLeaves(t, c, "c", "b", "a")
	// Unread leaves (prefetched) go oldest first.
	c.put("d", make([]byte, 10))
	checkLeaves(t, c, "d", "c", "b")
	if c.has("a") {
		t.Fatal("a is held past the budget")
	}
	// A leaf that was read goes before the unread ones, however recent.
	if _, ok := c.read("d"); !ok {
		t.Fatal("d not held")
	}
	c.put("e", make([]byte, 10))
	checkLeaves(t, c, "e", "c", "b")
}

func TestLeafCacheReadOrder(t *testing.T) {
	c := newLeafCache(30, 100)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, []byte(k))
		c.read(k)
	}
	// The least recently read leaf goes first.
	c.read("a")
	checkLeaves(t, c, "a", "c", "b")
	c.put("d", make([]byte, 29))
	checkLeaves(t, c, "d", "a")
	data, ok := c.read("a")
	if !ok || string(data) != "a" {
		t.Fatalf("read a: %q, %v", data, ok)
	}
	if _, ok := c.read("b"); ok {
		t.Fatal("read an evicted leaf")
	}
}

func TestLeafCachePutAgain(t *testing.T) {
	c := newLeafCache(100, 100)
	c.put("a", make([]byte, 10))
	c.put("b", make([]byte, 10))
	c.put("a", make([]byte, 10))
	checkLeaves(t, c, "a", "b")
	// Putting a leaf again neither counts its bytes twice nor marks it
	// read: it still goes before the older unread one.
	c.put("a", make([]byte, 10))
	checkLeaves(t, c, "a", "b")
	if c.m["a"].Value.(*cachedLeaf).read {
		t.Fatal("put marked a leaf read")
	}
}

func TestLeafCacheOversize(t *testing.T) {
	c := newLeafCache(10, 100)
	c.put("a", make([]byte, 5))
	// A leaf larger than the budget is kept alone: the read that needs
	// it is served.
	c.put("big", make([]byte, 25))
	checkLeaves(t, c, "big")
	c.put("b", make([]byte, 5))
	checkLeaves(t, c, "b")
}

func TestLeafCacheClear(t *testing.T) {
	c := newLeafCache(100, 100)
	c.put("a", make([]byte, 10))
	c.read("a")
	c.clear()
	checkLeaves(t, c)
	c.put("b", make([]byte, 10))
	checkLeaves(t, c, "b")
}

func TestInodeCacheFIFO(t *testing.T) {
	c := newInodeCache(3)
	nodes := make([]*inode, 5)
	for i := range nodes {
		nodes[i] = &inode{size: uint64(i)}
	}
	for i := range 3 {
		c.put(fmt.Sprint(i), nodes[i])
	}
	// Putting a held node again changes nothing, using it neither: the
	// oldest put goes first.
	c.put("0", nodes[4])
	if c.get("0") != nodes[0] {
		t.Fatal("a second put replaced the node")
	}
	c.put("3", nodes[3])
	if c.get("0") != nil {
		t.Fatal("the oldest node is held past the bound")
	}
	for i := 1; i <= 3; i++ {
		if c.get(fmt.Sprint(i)) != nodes[i] {
			t.Fatalf("node %d not held", i)
		}
	}
	if len(c.m) != 3 || len(c.order) != 3 {
		t.Fatalf("%d nodes, %d in order; want 3", len(c.m), len(c.order))
	}
	c.clear()
	if c.get("3") != nil || len(c.order) != 0 {
		t.Fatal("clear kept nodes")
	}
}

// Of the leaves read, only the keepRead most recently read stay, however
// much budget is left; unread ones are not evicted for them.
func TestLeafCacheKeepsFewRead(t *testing.T) {
	c := newLeafCache(100, 2)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.put(k, make([]byte, 10))
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := c.read(k); !ok {
			t.Fatalf("%s not held", k)
		}
	}
	checkLeaves(t, c, "c", "b", "e", "d")
	// Reading a kept leaf again evicts nothing.
	c.read("b")
	checkLeaves(t, c, "b", "c", "e", "d")
	c.read("d")
	checkLeaves(t, c, "d", "b", "e")
	c.clear()
	c.put("f", make([]byte, 10))
	c.read("f")
	c.put("g", make([]byte, 10))
	c.read("g")
	checkLeaves(t, c, "g", "f")
}
