// Package names resolves IPNS names and DNSLink domains to content paths,
// and keeps each answer for its TTL.
package names

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// ErrNotFound reports a name that no record, router or DNS answer resolves
// (or whose chain loops or runs longer than MaxDepth). Errors that wrap it
// mean the name does not exist; others are failures to ask.
var ErrNotFound = errors.New("name not resolved")

// MaxDepth bounds a chain of names (an IPNS record or DNSLink pointing at
// another name) followed by one Resolve.
const MaxDepth = 32

// Resolved is what a name points at once its chain ends in /ipfs/.
type Resolved struct {
	// Root is the CID the chain ends at.
	Root cid.Cid
	// Rest is the path below Root, one element a segment; empty for Root
	// itself.
	Rest []string
	// TTL is how much longer the answer may be used before resolving again.
	TTL time.Duration
}

// normalize turns a name as given (bare, or /ipns/<name>[/path]) into the
// name itself and the path below it, one element a segment.
func normalize(name string) (string, []string, error) {
	s := strings.TrimPrefix(name, "/ipns/")
	s = strings.Trim(s, "/")
	head, tail, _ := strings.Cut(s, "/")
	if head == "" {
		return "", nil, fmt.Errorf("%w: empty name %q", ErrNotFound, name)
	}
	var rest []string
	for seg := range strings.SplitSeq(tail, "/") {
		if seg != "" {
			rest = append(rest, seg)
		}
	}
	return head, rest, nil
}

// isDomain reports whether s can be a DNS name: at least two labels of
// letters, digits, hyphens and underscores, at most 253 bytes.
func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
