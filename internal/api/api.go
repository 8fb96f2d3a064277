// Package api is the daemon's local API: HTTP over the unix socket in the
// repository. A Server serves a node on it, one method per endpoint, and a
// Client is a running daemon reached through it.
//
// Every endpoint takes its argument as the query parameter arg; block/put
// takes the block as the request body and the CID prefix as query
// parameters. Errors are a non-2xx status with a one-line text body.
//
// blocks/get takes CIDs, one a line, as its body and answers with a stream
// of frames, one a block as it arrives; blocks/put takes such a stream and
// answers with the count of blocks stored. A frame is the uvarint length of
// the binary CID, the CID, the uvarint length of the data, the data. It is
// close to a CARv1 section, but go-car does not serve here: its public API
// reads and writes sections only within a whole CAR, whose header must name
// at least one root, which these streams have not; and the separate lengths
// bound a frame's CID and data before either is read.
package api

import (
	"context"
	"errors"
	"time"

	"github.com/bsfs/bsfs/block"
)

// The endpoints.
const (
	pathID           = "/v0/id"
	pathBlockPut     = "/v0/block/put"
	pathBlockGet     = "/v0/block/get"
	pathBlockStat    = "/v0/block/stat"
	pathBlockRm      = "/v0/block/rm"
	pathSwarmConn    = "/v0/swarm/connect"
	pathSwarmPeers   = "/v0/swarm/peers"
	pathWantlist     = "/v0/bitswap/wantlist"
	pathBlocksGet    = "/v0/blocks/get"
	pathBlocksPut    = "/v0/blocks/put"
	pathRoots        = "/v0/roots"
	pathRootsAdd     = "/v0/roots/add"
	pathStat         = "/v0/stat"
	pathLedger       = "/v0/ledger"
	pathPeerWantlist = "/v0/wantlist/peer"
	pathPinAdd       = "/v0/pin/add"
	pathPinRm        = "/v0/pin/rm"
	pathPinLs        = "/v0/pin/ls"
	pathGC           = "/v0/repo/gc"
	// pathCacheUsage answers with the cache's quota and use (cache.Usage
	// as JSON): what df shows on a mount.
	pathCacheUsage = "/v0/cache/usage"
	// findprovs answers with the providers' peer IDs, one a line, written
	// as the lookup finds them.
	pathFindProvs = "/v0/routing/findprovs"
	pathProvide   = "/v0/routing/provide"
	// pathNameResolve answers with what an IPNS name or DNSLink domain
	// points at (names.Resolved as JSON).
	pathNameResolve = "/v0/name/resolve"
	// pathNamePublish signs and publishes a record (PublishOptions in the
	// query: arg, key, lifetime, ttl) and answers with Published as JSON.
	pathNamePublish = "/v0/name/publish"
)

const (
	probeTimeout = 2 * time.Second
	// maxBlocksGet bounds the CIDs of one blocks/get request.
	maxBlocksGet = 4096
)

// ErrNoDaemon is returned by operations that need the network when no
// daemon runs.
var ErrNoDaemon = errors.New("this command needs a running daemon: start one with `bsfs daemon`")

// Identity is a node's peer ID, the addresses it can be reached at, each
// ending in /p2p/<id>, and, online, its reachability from AutoNAT
// ("public", "private" or "unknown").
type Identity struct {
	ID           string
	Addrs        []string
	Reachability string `json:",omitempty"`
}

// BlockWriter stores a stream of blocks. Close ends the stream and returns
// the first error of storing any of them.
type BlockWriter interface {
	Put(ctx context.Context, b block.Block) error
	Close() error
}

// PublishOptions is what to publish: the record's value, a content path,
// and the key to sign it with ("self" when empty); a lifetime or TTL of 0
// means the defaults (Ipns.RecordLifetime, 5 minutes).
type PublishOptions struct {
	Value         string
	Key           string
	Lifetime, TTL time.Duration
}

// Published is a record published: the IPNS name (a CIDv1) and the value.
type Published struct {
	Name  string
	Value string
}
