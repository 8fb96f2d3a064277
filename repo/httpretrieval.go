package repo

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/cache"
)

// HTTPRetrievalConfig configures fetching blocks from trustless HTTP
// gateways named by provider records, as Kubo's section of the same name.
type HTTPRetrievalConfig struct {
	// Enabled turns HTTP retrieval on; absent means on.
	Enabled *bool `json:",omitempty"`
	// Allowlist, if not empty, names the only gateway hosts used (names or
	// IP addresses, no port); Denylist names hosts never used.
	Allowlist []string `json:",omitempty"`
	Denylist  []string `json:",omitempty"`
	// NumWorkers is how many requests one gateway may have in flight;
	// 0 means 16.
	NumWorkers int `json:",omitempty"`
	// MaxBlockSize bounds a gateway's answer, such as "1MiB"; "" means
	// DefaultHTTPMaxBlockSize, which is also the most allowed.
	MaxBlockSize string `json:",omitempty"`
}

// DefaultHTTPMaxBlockSize is HTTPRetrieval.MaxBlockSize's default.
const DefaultHTTPMaxBlockSize = "2MiB"

// On reports whether HTTP retrieval is enabled.
func (h HTTPRetrievalConfig) On() bool { return h.Enabled == nil || *h.Enabled }

// MaxBlockBytes returns MaxBlockSize in bytes; the config was checked at
// load.
func (h HTTPRetrievalConfig) MaxBlockBytes() int64 {
	n, err := parseBlockSize(h.MaxBlockSize)
	if err != nil {
		return block.MaxSize
	}
	return n
}

// check validates the section, naming the key at fault.
func (h *HTTPRetrievalConfig) check() error {
	if h.NumWorkers < 0 {
		return fmt.Errorf("%w: HTTPRetrieval.NumWorkers %d: want 0 (the default) or more", ErrConfig, h.NumWorkers)
	}
	if _, err := parseBlockSize(h.MaxBlockSize); err != nil {
		return fmt.Errorf("%w: HTTPRetrieval.MaxBlockSize: %v", ErrConfig, err)
	}
	for _, l := range []struct {
		key   string
		hosts []string
	}{{"HTTPRetrieval.Allowlist", h.Allowlist}, {"HTTPRetrieval.Denylist", h.Denylist}} {
		for _, host := range l.hosts {
			if err := checkHost(host); err != nil {
				return fmt.Errorf("%w: %s %q: %v", ErrConfig, l.key, host, err)
			}
		}
	}
	return nil
}

// parseBlockSize parses MaxBlockSize: "" is the default.
func parseBlockSize(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return block.MaxSize, nil
	}
	n, err := cache.ParseSize(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, such as 1MiB", s)
	}
	if n > block.MaxSize {
		return 0, fmt.Errorf("%q is more than %s, the largest block bsfs accepts", s, DefaultHTTPMaxBlockSize)
	}
	return n, nil
}

// checkHost accepts a host name or an IP address, without scheme, port or
// path.
func checkHost(h string) error {
	t := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if _, err := netip.ParseAddr(t); err == nil {
		return nil
	}
	if h == "" || strings.ContainsAny(h, ":/ @?#") {
		return fmt.Errorf("want a host name or an IP address, without scheme, port or path")
	}
	return nil
}
