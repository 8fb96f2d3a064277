package names

import (
	"sync"
	"time"
)

// cacheSize bounds the names a Resolver keeps answers for.
const cacheSize = 1024

// cache keeps resolved names until their TTL runs out.
type cache struct {
	max int

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	res     Resolved
	expires time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[string]cacheEntry)}
}

// get returns name's answer if it is still fresh at now, with the TTL
// left.
func (c *cache) get(name string, now time.Time) (Resolved, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	if !ok {
		return Resolved{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, name)
		return Resolved{}, false
	}
	res := e.res
	res.TTL = e.expires.Sub(now)
	return res, true
}

// put keeps res for its TTL from now. When full, the expired entries go,
// then the one closest to expiring.
func (c *cache) put(name string, res Resolved, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[name]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[name] = cacheEntry{res: res, expires: now.Add(res.TTL)}
}

// evict makes room for one entry.
func (c *cache) evict(now time.Time) {
	var soonest string
	var at time.Time
	for name, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, name)
			continue
		}
		if soonest == "" || e.expires.Before(at) {
			soonest, at = name, e.expires
		}
	}
	if len(c.entries) >= c.max {
		delete(c.entries, soonest)
	}
}
