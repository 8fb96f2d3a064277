package node

import (
	"log/slog"

	"github.com/bsfs/bsfs/exchange/httpnet"
	"github.com/bsfs/bsfs/repo"
)

// httpRetrieval turns the config's HTTPRetrieval section into the
// exchange's HTTP configuration; nil when it is disabled.
func httpRetrieval(c repo.HTTPRetrievalConfig) *httpnet.Config {
	if !c.On() {
		return nil
	}
	return &httpnet.Config{
		MaxBlockSize: c.MaxBlockBytes(),
		Workers:      c.NumWorkers,
		Allowlist:    c.Allowlist,
		Denylist:     c.Denylist,
		Logger:       slog.Default(),
	}
}
