package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	out := "bitswap status\n\tblocks received: 12\n\tdata sent:       67108864\n\tdup data received: 0\n\twantlist: 3 keys\n\tpartners: 20\n"
	m := parseStat(out)
	for name, want := range map[string]uint64{"blocks received": 12, "data sent": 67108864, "dup data received": 0, "wantlist": 3, "partners": 20} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%q = %d (%v), want %d", name, got, ok, want)
		}
	}
	if _, ok := m["bitswap status"]; ok {
		t.Error("the title parsed as a figure")
	}
}

func TestRoundVerdict(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name   string
		rd     round
		ratio  float64
		passed bool
	}{
		{"even", round{times: []time.Duration{2 * s, 2 * s, 3 * s}}, 1.5, true},
		{"unfair", round{times: []time.Duration{2 * s, 2 * s, 3*s + 1}}, 1.5, false},
		{"a client failed", round{times: []time.Duration{2 * s, 0}, errs: []string{"client-1-02: boom"}}, 1, false},
		{"none completed", round{times: []time.Duration{0, 0}}, 0, false},
		{"round error", round{times: []time.Duration{s, s}, errs: []string{"server did not start"}}, 1, false},
	} {
		if got := tc.rd.ratio(); got-tc.ratio > 1e-6 || tc.ratio-got > 1e-6 {
			t.Errorf("%s: ratio %v, want %v", tc.name, got, tc.ratio)
		}
		if got := tc.rd.passed(1.5); got != tc.passed {
			t.Errorf("%s: passed %v, want %v", tc.name, got, tc.passed)
		}
		if sum := tc.rd.summary(1.5); strings.Contains(sum, "FAILED") == tc.passed {
			t.Errorf("%s: summary %q", tc.name, sum)
		}
	}
}
