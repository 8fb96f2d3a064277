package main

import (
	"context"
	"net/http"
	"time"

	"github.com/bsfs/bsfs/cache"
)

// pathCacheUsage answers with the cache's quota and use (cache.Usage as
// JSON): what df shows on a mount.
const pathCacheUsage = "/v0/cache/usage"

// statfsTimeout bounds asking the daemon for a mount's df figures.
const statfsTimeout = 2 * time.Second

// CacheUsage returns the cache's quota and use.
func (n *repoNode) CacheUsage(ctx context.Context) (cache.Usage, error) {
	c, err := n.cacheOf(ctx)
	if err != nil {
		return cache.Usage{}, err
	}
	return c.Usage(), nil
}

func (c *apiClient) CacheUsage(ctx context.Context) (cache.Usage, error) {
	var u cache.Usage
	err := c.getJSON(ctx, pathCacheUsage, &u)
	return u, err
}

// registerUsageAPI serves the cache's usage on the local API.
func registerUsageAPI(mux *http.ServeMux, n node) {
	mux.HandleFunc("GET "+pathCacheUsage, func(w http.ResponseWriter, r *http.Request) {
		u, err := n.CacheUsage(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, u)
	})
}

// dfFigures are u as df shows them: the quota as the size (the used bytes
// when there is no quota), and the bytes of fetched blocks as used.
func dfFigures(u cache.Usage) (total, used uint64) {
	used = uint64(max(u.Used, 0))
	if u.Quota < 0 {
		return used, used
	}
	return uint64(u.Quota), used
}

// cacheUsage reports the cache's figures for df on a mount of this node.
func (n *repoNode) cacheUsage() (total, used uint64) { return dfFigures(n.cache.Usage()) }

// apiUsage reports the daemon's figures for df on a mount through its API;
// none while the daemon does not answer.
func apiUsage(n node) func() (total, used uint64) {
	return func() (uint64, uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), statfsTimeout)
		defer cancel()
		u, err := n.CacheUsage(ctx)
		if err != nil {
			return 0, 0
		}
		return dfFigures(u)
	}
}
