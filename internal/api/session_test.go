package api

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/unixfs"
)

// session stands for an exchange session: it lives until its context ends.
type session struct{ ctx context.Context }

func (s *session) GetBlock(context.Context, cid.Cid) (block.Block, error) {
	return block.Block{}, block.ErrNotFound
}

func (s *session) GetBlocks(context.Context, []cid.Cid) (*block.Stream, error) {
	st := block.NewStream()
	st.Close(nil)
	return st, nil
}

// sessionStarts keeps the context of each session started, which ends
// when the session does.
type sessionStarts struct{ ctxs []context.Context }

func (s *sessionStarts) start(ctx context.Context) unixfs.BlockGetter {
	s.ctxs = append(s.ctxs, ctx)
	return &session{ctx: ctx}
}

func ended(ctx context.Context) bool { return ctx.Err() != nil }

// A session lives while a request uses it and ends on its own once idle
// for the idle time-out, with no further request needed to sweep it.
func TestSessionEndsWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		starts := &sessionStarts{}
		a := &sessions{idle: 100 * time.Millisecond}
		defer a.closeAll()

		g1, done1 := a.get("reader", starts.start)
		g2, done2 := a.get("reader", starts.start)
		if len(starts.ctxs) != 1 || g1 != g2 {
			t.Fatalf("two requests of one session started %d sessions", len(starts.ctxs))
		}
		done1()
		done1() // a second call changes nothing
		time.Sleep(3 * a.idle)
		synctest.Wait()
		if ended(starts.ctxs[0]) || a.len() != 1 {
			t.Fatal("a session ended while a request was using it")
		}
		done2()
		time.Sleep(a.idle - time.Nanosecond)
		synctest.Wait()
		if ended(starts.ctxs[0]) || a.len() != 1 {
			t.Fatal("a session ended before it was idle for the time-out")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if !ended(starts.ctxs[0]) || a.len() != 0 {
			t.Fatalf("a session idle for the time-out (%v) was kept: %d kept", a.idle, a.len())
		}

		// Used again after it ended, the name starts a new session.
		_, done := a.get("reader", starts.start)
		done()
		if len(starts.ctxs) != 2 || ended(starts.ctxs[1]) {
			t.Fatalf("%d sessions started; want a second, running", len(starts.ctxs))
		}
	})
}

// Past maxSessions, a new session ends the one idle longest, never one a
// request is using.
func TestSessionsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		starts := &sessionStarts{}
		a := &sessions{idle: time.Hour}
		defer a.closeAll()

		_, busyDone := a.get("busy", starts.start) // in use throughout
		for i := range maxSessions - 1 {
			_, done := a.get(fmt.Sprint("idle-", i), starts.start)
			done()
			time.Sleep(time.Millisecond) // distinct idle times
		}
		if a.len() != maxSessions {
			t.Fatalf("%d sessions kept, want %d", a.len(), maxSessions)
		}
		_, done := a.get("newcomer", starts.start)
		done()
		if a.len() != maxSessions {
			t.Errorf("%d sessions kept after one more, want %d", a.len(), maxSessions)
		}
		if ended(starts.ctxs[0]) {
			t.Error("the session in use was ended")
		}
		if !ended(starts.ctxs[1]) {
			t.Error("the session idle longest was kept")
		}
		for i, ctx := range starts.ctxs[2:] {
			if ended(ctx) {
				t.Errorf("session %d ended; only the idlest should have", i+2)
			}
		}
		busyDone()
	})
}
