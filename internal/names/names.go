// Package names resolves IPNS names and DNSLink domains to content paths,
// and keeps each answer for its TTL.
package names

import (
	"errors"
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
