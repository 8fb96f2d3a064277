package decision

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange/message"
)

// countSender counts the blocks sent and signals done when want arrive.
type countSender struct {
	blocks atomic.Int64
	want   int64
	done   chan struct{}
}

func (s *countSender) SendMessage(_ context.Context, _ peer.ID, m *message.Message) error {
	if s.blocks.Add(int64(len(m.Blocks))) == s.want {
		close(s.done)
	}
	return nil
}

// BenchmarkServe measures the engine end to end with a store and a network
// that cost nothing: 100 peers each want 100 blocks of 4 KiB, all present.
func BenchmarkServe(b *testing.B) {
	const peers, wants = 100, 100
	store := newMemStore()
	msgs := make([]*message.Message, peers)
	for i := range msgs {
		m := &message.Message{}
		for j := range wants {
			c := testCID(b, fmt.Sprint(i, "/", j))
			store.putSized(c, 4<<10)
			m.Wants = append(m.Wants, wantBlock(c))
		}
		msgs[i] = m
	}
	ids := make([]peer.ID, peers)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprint("peer", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		s := &countSender{want: peers * wants, done: make(chan struct{})}
		e := New(store, s, Config{Logger: quietLogger()})
		for i, m := range msgs {
			e.MessageReceived(context.Background(), ids[i], m)
		}
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d blocks sent", s.blocks.Load(), s.want)
		}
		e.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*peers*wants), "ns/block")
}
