package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/atomicfile"
	"github.com/bsfs/bsfs/repo"
)

const (
	// publishedDir holds, in the repository, the last record published
	// with each key, named as the key: the sequence number goes on from
	// it, and the daemon republishes it.
	publishedDir = "ipns"
	// publishTimeout bounds one publication to the DHT and the routers.
	publishTimeout = 2 * time.Minute
	// firstRepublish is how long after start the daemon first republishes,
	// when the period is longer.
	firstRepublish = time.Minute
)

// PublishName signs a record pointing at opts.Value with the key
// opts.Key ("self" when empty) and publishes it to the DHT and the
// delegated routers. Its sequence number follows the last record
// published with the key, unchanged when the value is.
func (n *Node) PublishName(ctx context.Context, opts api.PublishOptions) (api.Published, error) {
	if n.host == nil {
		return api.Published{}, api.ErrNoDaemon
	}
	value, err := path.NewPath(opts.Value)
	if err != nil {
		return api.Published{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	keyName := opts.Key
	if keyName == "" {
		keyName = repo.SelfKey
	}
	sk, err := repo.LoadKey(n.repo.Path, keyName)
	if err != nil {
		return api.Published{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return api.Published{}, err
	}
	name := ipns.NameFromPeer(id)
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = n.repo.Config.Ipns.Lifetime()
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = ipns.DefaultRecordTTL
	}
	n.publishMu.Lock()
	defer n.publishMu.Unlock()
	var seq uint64
	prev, err := n.lastPublished(keyName, name)
	switch {
	case err == nil:
		seq, _ = prev.Sequence()
		if v, err := prev.Value(); err != nil || v.String() != value.String() {
			seq++
		}
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ipns.ErrPublicKeyMismatch):
		// Nothing published with this key yet: the sequence starts at 0.
	default:
		// Starting again at 0 would be refused wherever the old record
		// is held: say so rather than publish in vain.
		return api.Published{}, fmt.Errorf("the last record published with key %q (%s) is unreadable, so its sequence number is unknown: %w; remove the file to start again at 0",
			keyName, filepath.Join(n.repo.Path, publishedDir, keyName), err)
	}
	rec, err := ipns.NewRecord(sk, value, seq, time.Now().Add(lifetime), ttl)
	if err != nil {
		return api.Published{}, err
	}
	if err := n.putRecord(ctx, keyName, name, rec); err != nil {
		return api.Published{}, err
	}
	return api.Published{Name: name.String(), Value: value.String()}, nil
}

// putRecord sends rec to the DHT and the delegated routers, and keeps it
// as the key's last record once one of them took it.
func (n *Node) putRecord(ctx context.Context, keyName string, name ipns.Name, rec *ipns.Record) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	delegated, err := n.ipnsDelegated()
	if err != nil {
		return err
	}
	var errs []error
	sent := 0
	if n.router != nil {
		errs = append(errs, n.router.PutIPNS(ctx, name, rec))
		sent++
	}
	if delegated != nil {
		errs = append(errs, delegated.PutIPNS(ctx, name, rec))
		sent++
	}
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	switch {
	case sent == 0:
		return errors.New("nowhere to publish: the daemon runs no DHT and has no delegated router")
	case failed == sent:
		return fmt.Errorf("publish %s: %w", name, errors.Join(errs...))
	case failed > 0:
		slog.Warn("IPNS record not published everywhere", "name", name, "err", errors.Join(errs...))
	}
	data, err := ipns.MarshalRecord(rec)
	if err != nil {
		return err
	}
	dir := filepath.Join(n.repo.Path, publishedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, keyName), data)
}

// lastPublished returns the last record published with the key, if it is
// name's.
func (n *Node) lastPublished(keyName string, name ipns.Name) (*ipns.Record, error) {
	data, err := os.ReadFile(filepath.Join(n.repo.Path, publishedDir, keyName))
	if err != nil {
		return nil, err
	}
	rec, err := ipns.UnmarshalRecord(data)
	if err != nil {
		return nil, err
	}
	pk, err := ipns.ExtractPublicKey(rec, name)
	if err != nil {
		return nil, err
	}
	// The signature proves the record is name's: a key made anew under
	// the same file name starts its own sequence.
	if err := ipns.Validate(rec, pk); err != nil && !errors.Is(err, ipns.ErrExpiredRecord) {
		return nil, err
	}
	return rec, nil
}

// republish publishes every key's last record again, valid for another
// Ipns.RecordLifetime, every Ipns.RepublishPeriod until ctx ends.
func (n *Node) republish(ctx context.Context) {
	period := n.repo.Config.Ipns.Republish()
	t := time.NewTimer(min(firstRepublish, period))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.republishAll(ctx)
		t.Reset(period)
	}
}

// republishAll publishes each key's last record again with a new
// validity, same value and sequence.
func (n *Node) republishAll(ctx context.Context) {
	entries, err := os.ReadDir(filepath.Join(n.repo.Path, publishedDir))
	if err != nil {
		return // nothing published yet
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		if strings.HasPrefix(e.Name(), ".") {
			continue // a write a crash left unfinished (atomicfile.Write)
		}
		if err := n.republishKey(ctx, e.Name()); err != nil {
			slog.Warn("IPNS record not republished", "key", e.Name(), "err", err)
		}
	}
}

// republishKey republishes the last record of the key keyName.
func (n *Node) republishKey(ctx context.Context, keyName string) error {
	sk, err := repo.LoadKey(n.repo.Path, keyName)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return err
	}
	name := ipns.NameFromPeer(id)
	n.publishMu.Lock()
	defer n.publishMu.Unlock()
	prev, err := n.lastPublished(keyName, name)
	if err != nil {
		return err
	}
	value, err := prev.Value()
	if err != nil {
		return err
	}
	seq, _ := prev.Sequence()
	ttl, err := prev.TTL()
	if err != nil {
		ttl = ipns.DefaultRecordTTL
	}
	rec, err := ipns.NewRecord(sk, value, seq, time.Now().Add(n.repo.Config.Ipns.Lifetime()), ttl)
	if err != nil {
		return err
	}
	if err := n.putRecord(ctx, keyName, name, rec); err != nil {
		return err
	}
	slog.Info("IPNS record republished", "name", name, "value", value, "sequence", seq)
	return nil
}
