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
		if got := tc.r.ratio(ratio{col: tc.col, base: "a"}); got != tc.want {
			t.Errorf("%s ratio %s/a = %q, want %q", tc.r.name, tc.col, got, tc.want)
		}
	}
	lat := res.row(tablePairs, "slow", "ms", false)
	lat.add("a", 10)
	lat.add("b", 20)
	if got := lat.ratio(ratio{col: "b", base: "a"}); got != "2.00 ▼" {
		t.Errorf("doubled latency ratio = %q, want 2.00 ▼", got)
	}

	var sb strings.Builder
	res.writeTable(&sb, tablePairs, []string{"a", "b"}, []ratio{{title: "b ÷ a", col: "b", base: "a"}})
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

func TestTargetRatio(t *testing.T) {
	var res results
	mem := res.row(tableScale, "peak memory", "MiB", false)
	mem.add("bsfs", 60)
	mem.add("at most", 59.5)
	mem.add("at most", 62)
	mem.add("at most", 80)
	speed := res.row(tableScale, "throughput", "MB/s", true)
	speed.add("bsfs", 90)
	speed.add("at least", 100)
	idle := res.row(tableScale, "no target", "MB/s", true)
	idle.add("bsfs", 1)
	for _, tc := range []struct {
		r    *row
		base string
		want string
	}{
		{mem, "at most", "0.97 ✓"},
		{speed, "at least", "0.90 ✗"},
		{idle, "at most", "–"},
	} {
		if got := tc.r.ratio(ratio{col: "bsfs", base: tc.base, target: true}); got != tc.want {
			t.Errorf("%s ÷ target = %q, want %q", tc.r.name, got, tc.want)
		}
	}
	over := res.row(tableScale, "over", "MiB", false)
	over.add("bsfs", 61)
	over.add("at most", 60)
	if got := over.ratio(ratio{col: "bsfs", base: "at most", target: true}); got != "1.02 ✗" {
		t.Errorf("2%% over an at-most target = %q, want 1.02 ✗", got)
	}
	if !res.has(tableScale) || res.has(tablePairs) {
		t.Errorf("has(scale), has(pairs) = %v, %v; want true, false", res.has(tableScale), res.has(tablePairs))
	}
}
