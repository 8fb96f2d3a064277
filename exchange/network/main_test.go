package network

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every Close
// waits for what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
