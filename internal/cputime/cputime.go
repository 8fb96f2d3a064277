// Package cputime reports a benchmark's CPU time per iteration, a figure
// other work on a shared machine disturbs far less than the time taken.
package cputime

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Report reports the process's CPU time (user and system) per iteration,
// as cpu-ns/op, from now to the end of b.
func Report(b *testing.B) {
	start := used(b)
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64(used(b)-start)/float64(b.N), "cpu-ns/op")
		}
	})
}

// used is the process's CPU time so far, in nanoseconds.
func used(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
