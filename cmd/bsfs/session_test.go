package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/unixfs"
)

// sessionStarts starts real exchange sessions and keeps each one's context,
// which ends when the session does.
type sessionStarts struct {
	ex   *exchange.Exchange
	ctxs []context.Context
}

func (s *sessionStarts) start(ctx context.Context) unixfs.BlockGetter {
	s.ctxs = append(s.ctxs, ctx)
	return s.ex.NewSession(ctx)
}

func ended(ctx context.Context) bool { return ctx.Err() != nil }

// An API session lives while a request uses it and ends on its own once
// idle, with no further request needed to sweep it.
func TestAPISessionEndsWhenIdle(t *testing.T) {
	starts := &sessionStarts{ex: testnode.New(t, exchange.Config{}).Ex}
	a := &apiSessions{idle: 100 * time.Millisecond}
	defer a.closeAll()

	g1, done1 := a.get("reader", starts.start)
	g2, done2 := a.get("reader", starts.start)
	if len(starts.ctxs) != 1 || g1 != g2 {
		t.Fatalf("two requests of one session started %d sessions", len(starts.ctxs))
	}
	done1()
	done1() // a second call changes nothing
	time.Sleep(300 * time.Millisecond)
	if ended(starts.ctxs[0]) || a.len() != 1 {
		t.Fatal("a session ended while a request was using it")
	}
	done2()
	deadline := time.Now().Add(5 * time.Second)
	for !ended(starts.ctxs[0]) || a.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("an idle session lasts over 5 s (idle time-out %v): %d kept", a.idle, a.len())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Used again after it ended, the name starts a new session.
	_, done := a.get("reader", starts.start)
	done()
	if len(starts.ctxs) != 2 || ended(starts.ctxs[1]) {
		t.Fatalf("%d sessions started; want a second, running", len(starts.ctxs))
	}
}

// Past maxAPISessions, a new session ends the one idle longest, never one a
// request is using.
func TestAPISessionsBounded(t *testing.T) {
	starts := &sessionStarts{ex: testnode.New(t, exchange.Config{}).Ex}
	a := &apiSessions{idle: time.Hour}
	defer a.closeAll()

	_, busyDone := a.get("busy", starts.start) // in use throughout
	for i := range maxAPISessions - 1 {
		_, done := a.get(fmt.Sprint("idle-", i), starts.start)
		done()
		time.Sleep(time.Millisecond) // distinct idle times
	}
	if a.len() != maxAPISessions {
		t.Fatalf("%d sessions kept, want %d", a.len(), maxAPISessions)
	}
	_, done := a.get("newcomer", starts.start)
	done()
	if a.len() != maxAPISessions {
		t.Errorf("%d sessions kept after one more, want %d", a.len(), maxAPISessions)
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
}
