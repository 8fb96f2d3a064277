package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRotate(t *testing.T) {
	s := []int{1, 2, 3}
	for i, want := range [][]int{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 2, 3}} {
		if got := rotate(s, i); !slices.Equal(got, want) {
			t.Errorf("rotate(%v, %d) = %v, want %v", s, i, got, want)
		}
	}
}

func TestCellAndRatio(t *testing.T) {
	var res results
	up := res.row(tablePairs, "throughput", "MB/s", true)
	up.add("a", 60)
	up.add("a", 50)
	up.add("a", 70)
	up.add("b", 120)
	up.skip("c", "n/a: bsfs lacks cat")
	up.fail("d", errors.New("boom\nsecond line"))
	down := res.row(tablePairs, "latency", "ms", false)
	down.add("a", 100)
	down.add("b", 102)

	for col, want := range map[string]string{"a": "60.0 (50.0–70.0)", "b": "120", "c": "n/a: bsfs lacks cat", "d": "failed", "e": "–"} {
		if got := up.cells[col].format(); got != want {
			t.Errorf("cell %s = %q, want %q", col, got, want)
		}
	}
	for _, tc := range []struct {
		r         *row
		col, want string
	}{
		{up, "b", "2.00 ▲"}, // twice the throughput
		{down, "b", "1.02"}, // within 5%
		{up, "c", "–"},      // skipped
		{down, "a", "1.00"}, // itself
	} {
		if got := tc.r.ratio(tc.col, "a"); got != tc.want {
			t.Errorf("%s ratio %s/a = %q, want %q", tc.r.name, tc.col, got, tc.want)
		}
	}
	lat := res.row(tablePairs, "slow", "ms", false)
	lat.add("a", 10)
	lat.add("b", 20)
	if got := lat.ratio("b", "a"); got != "2.00 ▼" {
		t.Errorf("doubled latency ratio = %q, want 2.00 ▼", got)
	}

	var sb strings.Builder
	res.writeTable(&sb, tablePairs, []string{"a", "b"}, []ratio{{"b ÷ a", "b", "a"}})
	res.writeErrors(&sb)
	out := sb.String()
	for _, want := range []string{
		"|  | unit | better | a | b | b ÷ a |",
		"| throughput | MB/s | higher | 60.0 (50.0–70.0) | 120 | 2.00 ▲ |",
		"- throughput, d: boom | second line",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
