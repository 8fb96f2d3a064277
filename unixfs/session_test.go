package unixfs

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
)

// sessions is a real getter whose sessions are probes it keeps, to see
// that a File fetches through its own session and ends it on Close.
type sessions struct {
	BlockGetter
	mu   sync.Mutex
	made []*probe
	ctxs []context.Context
}

func (s *sessions) NewSession(ctx context.Context) BlockGetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &probe{g: s.BlockGetter}
	s.made = append(s.made, p)
	s.ctxs = append(s.ctxs, ctx)
	return p
}

func TestFileFetchesThroughItsSession(t *testing.T) {
	bs := storetest.New(t)
	data := blocktest.SeededBytes(300_000, 7)
	root := addSmall(t, bs, data, 4096, 174, false)
	g := &sessions{BlockGetter: Local(bs)}
	r := New(g, Config{})
	f, err := r.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f, 64<<10); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.made) != 1 {
		t.Fatalf("%d sessions for one file, want 1", len(g.made))
	}
	if _, batches, all := g.made[0].counts(); batches == 0 || len(all) < 300_000/4096 {
		t.Fatalf("the session fetched %d blocks in %d calls; want every leaf", len(all), batches)
	}
	if g.ctxs[0].Err() == nil {
		t.Fatal("the session's context is still live after Close")
	}
}
