package node

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStatCPU(t *testing.T) {
	// utime 250 and stime 37 ticks; the name holds ") " to mislead a
	// parser that splits on spaces or stops at the first ")".
	stat := "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 37 5 6 20 0 9 0 12345 1000000 2000 18446744073709551615\n"
	got, err := statCPU(stat)
	if want := 2870 * time.Millisecond; err != nil || got != want {
		t.Errorf("statCPU = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{
		"",
		"4242 (bsfs) S 1 2 3",
		"4242 (bsfs) S 1 4242 4242 0 -1 4194560 900 0 0 0 x 37 5 6",
		"4242 (bsfs) S 1 4242 4242 0 -1 4194560 900 0 0 0 -1 37 5 6",
	} {
		if d, err := statCPU(bad); err == nil {
			t.Errorf("statCPU(%q) = %v, no error", bad, d)
		}
	}
}

// TestStatCPUSelf reads this process's own line, which must parse and
// grow with the CPU time getrusage reports while the process spins.
func TestStatCPUSelf(t *testing.T) {
	read := func() time.Duration {
		raw, err := os.ReadFile("/proc/self/stat")
		if err != nil {
			t.Skip("no /proc here:", err)
		}
		d, err := statCPU(string(raw))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, ruBefore := read(), rusage()
	var sb strings.Builder
	for rusage()-ruBefore < 200*time.Millisecond {
		sb.WriteString("spin")
		if sb.Len() > 1<<20 {
			sb.Reset()
		}
	}
	if got := read() - before; got < 150*time.Millisecond || got > 2*time.Second {
		t.Errorf("/proc/self/stat grew by %v while getrusage grew by 200 ms", got)
	}
}
