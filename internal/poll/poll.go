// Package poll waits, in tests, for a condition that other goroutines or
// processes make true, checking it over and over on the real clock.
package poll

import (
	"fmt"
	"testing"
	"time"
)

// Every is how long a wait sleeps between two checks of its condition.
const Every = 10 * time.Millisecond

// Until waits until cond holds and fails the test ("what: not within
// timeout") if it does not within timeout.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilNil(t, timeout, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("%s: not within %v", what, timeout)
	})
}

// UntilNil waits until check returns nil and fails the test with check's
// last error if it does not within timeout.
func UntilNil(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(Every)
	}
}
