package main

import "testing"

// TestDirRuns checks how many times each kind of case runs in the
// directory rows: -runs for bsfs as the client, -dir-runs for Kubo.
func TestDirRuns(t *testing.T) {
	for _, tc := range []struct{ runs, dirRuns, bsfsWant, kuboWant int }{
		{5, 1, 5, 1},
		{5, 0, 5, 0},
		{1, 3, 1, 3}, // more runs asked of the slow cases than of the fast
		{5, 5, 5, 5},
	} {
		r := &runner{cfg: config{runs: tc.runs, dirRuns: tc.dirRuns}}
		var bsfsRuns, kuboRuns int
		for run := range r.dirRounds() {
			if r.dirRunsFor(false, run) {
				bsfsRuns++
			}
			if r.dirRunsFor(true, run) {
				kuboRuns++
			}
		}
		if bsfsRuns != tc.bsfsWant || kuboRuns != tc.kuboWant {
			t.Errorf("-runs %d -dir-runs %d: bsfs clients run %d times, Kubo clients %d; want %d and %d",
				tc.runs, tc.dirRuns, bsfsRuns, kuboRuns, tc.bsfsWant, tc.kuboWant)
		}
	}
}

func TestLineCounter(t *testing.T) {
	var c lineCounter
	for _, s := range []string{"total 8\n-r--r--r-- 1 root root 4096", " Jan  1 f0\n", "", "-r--r--r-- 1 root root 4096 Jan  1 f1\n"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if c != 3 {
		t.Errorf("counted %d lines, want 3", c)
	}
}

// TestScaleDisk checks that the room asked for covers the server's copy
// of the scale data and each run's client's, kept until the row ends.
func TestScaleDisk(t *testing.T) {
	r := &runner{cfg: config{scaleGiB: 4, scaleDirFiles: 100000, fileMiB: 256, dirFiles: 5000, scaleRuns: 5}}
	data := int64(4<<30+256<<20) + int64(105000)*4096
	if got := r.scaleDisk(); got < 6*data+1<<30 || got > 7*data+2<<30 {
		t.Errorf("scaleDisk = %.1f GiB for 6 copies of %.1f GiB of data", float64(got)/(1<<30), float64(data)/(1<<30))
	}
}
