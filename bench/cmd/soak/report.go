package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bsfs/bsfs/bench/internal/node"
	"github.com/bsfs/bsfs/bench/internal/stat"
)

// window is the samples taken in [from, to), summarised by their medians.
type window struct {
	name                       string
	from, to                   time.Duration
	n                          int
	rss, heap, goroutines, fds float64
}

// summarise fills in w's medians from the samples in it.
func summarise(w window, samples []sample) window {
	var rss, heap, g, fds []float64
	for _, s := range samples {
		if s.at >= w.from && s.at < w.to {
			rss = append(rss, float64(s.rss))
			heap = append(heap, float64(s.heap))
			g = append(g, float64(s.goroutines))
			fds = append(fds, float64(s.fds))
		}
	}
	if w.n = len(rss); w.n > 0 {
		w.rss, w.heap, w.goroutines, w.fds = stat.Median(rss), stat.Median(heap), stat.Median(g), stat.Median(fds)
	}
	return w
}

// windows are the first, second and last minutes of a run of duration d.
func windows(samples []sample, d time.Duration) []window {
	ws := []window{
		{name: "first minute", from: 0, to: time.Minute},
		{name: "second minute", from: time.Minute, to: 2 * time.Minute},
		{name: "last minute", from: d - time.Minute, to: d + time.Minute},
	}
	for i := range ws {
		ws[i] = summarise(ws[i], samples)
	}
	return ws
}

// growth compares the last minute with the second: the problems found.
func growth(second, last window, maxGoroutines, maxRSS float64) []string {
	if second.n == 0 || last.n == 0 {
		return []string{"too few samples to compare the second minute with the last: run for 3 minutes or more"}
	}
	var out []string
	if g := last.goroutines / second.goroutines; g > maxGoroutines {
		out = append(out, fmt.Sprintf("goroutines grew %.2f× (%.0f → %.0f), more than %.2f×", g, second.goroutines, last.goroutines, maxGoroutines))
	}
	if g := last.rss / second.rss; g > maxRSS {
		out = append(out, fmt.Sprintf("RSS grew %.2f× (%.1f → %.1f MiB), more than %.2f×", g, second.rss/(1<<20), last.rss/(1<<20), maxRSS))
	}
	return out
}

// settle is how long the watched node is left idle after the work before
// it is measured again: longer than the minute a daemon keeps an API
// client's idle session, so what is left is what it holds for good.
const settle = 75 * time.Second

// final measures the watched node once the work has stopped and it has
// settled, and records its exchange figures.
func (r *runner) final(ctx context.Context) string {
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
	s, err := r.measure(ctx)
	r.done("sample", err)
	if err == nil {
		r.idle = &s
	}
	r.saveProfiles(ctx, "idle")
	out, err := r.watched.n.CLI(ctx, "stat")
	r.done("stat", err)
	return string(out)
}

// finish checks what the run saw, prints it, writes the results file and
// reports whether the run passed.
func (r *runner) finish(bitswap string) (bool, error) {
	var errLines, warnLines []string
	for _, path := range r.logs {
		errs, warns, err := node.ScanLog(path)
		if err != nil {
			return false, err
		}
		for _, l := range errs {
			errLines = append(errLines, filepath.Base(path)+": "+l)
		}
		for _, l := range warns {
			warnLines = append(warnLines, filepath.Base(path)+": "+l)
		}
	}
	ws := windows(r.samples, r.cfg.duration)
	grew := growth(ws[1], ws[2], r.cfg.maxGoroutineGrowth, r.cfg.maxRSSGrowth)
	failed := 0
	for _, c := range r.counts {
		failed += c.failed
	}
	ok := failed == 0 && len(errLines) == 0 && len(grew) == 0
	report := r.report(ok, ws, grew, errLines, warnLines, bitswap)
	fmt.Fprint(os.Stderr, report)
	if r.cfg.out != "" {
		if err := os.WriteFile(r.cfg.out, []byte(report), 0o644); err != nil {
			return false, err
		}
		r.logf("wrote %s", r.cfg.out)
	}
	return ok, nil
}

// gcNote says whether gc ran during adds.
func gcNote(during bool) string {
	if during {
		return "`bsfs gc` on the watched node ran while adds ran there too (`-gc-during-adds`)."
	}
	return "`bsfs gc` on the watched node never ran while an add ran there: one that runs\n  between an add's blocks and its pin deletes them, and the add then waits\n  for peers to send them (`-gc-during-adds` lets them meet)."
}

// report is the results, as Markdown.
func (r *runner) report(ok bool, ws []window, grew, errLines, warnLines []string, bitswap string) string {
	var b strings.Builder
	verdict := "passed"
	if !ok {
		verdict = "FAILED"
	}
	var mix []string
	for _, o := range ops {
		mix = append(mix, fmt.Sprintf("%s %d", o.name, o.weight))
	}
	fmt.Fprintf(&b, `# Soak: %v of mixed work (issue 9, case 18)

Measured by `+"`%s`"+` on %s, in %v: **%s**.

- Machine: %s. Shared with other work.
- bsfs %s, %s; seed %d.
- The watched node runs `+"`bsfs daemon --mount DIR --cache-size %s`"+` for the
  whole run; %d peers (`+"`bsfs daemon`"+`) leave (SIGTERM) after %v ±50%% and come
  back on the same repository after %v ±50%%, connecting again to the
  watched node and to the peers that are up. All listen on 127.0.0.1, `+"`--routing none`"+`.
- %d workers run operations picked at random by weight (%s): `+"`bsfs add -r`"+` of
  random files (0 B to 24 MiB) and trees on the watched node or a peer;
  on the watched node `+"`bsfs cat`"+`, `+"`bsfs get`"+`, whole and ranged reads and
  listings through its mount (half of them of content it has not read
  yet), `+"`bsfs block get`"+` and `+"`block stat`"+`, `+"`bsfs gc`"+`; peers fetching from
  each other and from the watched node; `+"`bsfs swarm connect`"+`. Every byte
  fetched or read is checked against what was added; an operation not
  done within %v has failed.
- %s
- Every %v the watched node's RSS (/proc VmRSS), open file descriptors
  (/proc fd), goroutines and heap in use (its metrics) are sampled.
- The run passes when no operation or check failed, no daemon died or
  logged an ERROR line, and the last minute's median goroutines and RSS are
  at most %.2f× and %.2f× the second minute's.

## The watched node (medians)

| | samples | RSS | heap in use | goroutines | open fds |
| --- | --- | --- | --- | --- | --- |
`, r.cfg.duration, r.cfg.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.started).Round(time.Second), verdict,
		node.Machine(), r.cfg.version, runtime.Version(), r.cfg.seed,
		r.cfg.cacheSize, r.cfg.peers, r.cfg.uptime, r.cfg.downtime,
		r.cfg.workers, strings.Join(mix, ", "), r.cfg.opTimeout, gcNote(r.cfg.gcDuringAdds), r.cfg.sample,
		r.cfg.maxGoroutineGrowth, r.cfg.maxRSSGrowth)
	for _, w := range ws {
		fmt.Fprintf(&b, "| %s | %d | %.1f MiB | %.1f MiB | %.0f | %.0f |\n", w.name, w.n, w.rss/(1<<20), w.heap/(1<<20), w.goroutines, w.fds)
	}
	if s, l := ws[1], ws[2]; s.n > 0 && l.n > 0 {
		fmt.Fprintf(&b, "| last ÷ second | | %.2f | %.2f | %.2f | %.2f |\n", l.rss/s.rss, l.heap/s.heap, l.goroutines/s.goroutines, l.fds/s.fds)
	}
	if len(grew) == 0 {
		fmt.Fprintf(&b, "\nMemory and goroutines level off.\n")
	} else {
		fmt.Fprintf(&b, "\n%s.\n", strings.Join(grew, "; "))
	}
	if len(r.samples) > 0 && r.idle != nil {
		s0, s := r.samples[0], r.idle
		fmt.Fprintf(&b, "\nBefore the work the watched node had %d goroutines, %.1f MiB RSS, %.1f MiB heap in use and %d open fds; %v after the work it has %d, %.1f MiB, %.1f MiB and %d.\n",
			s0.goroutines, float64(s0.rss)/(1<<20), float64(s0.heap)/(1<<20), s0.fds, settle, s.goroutines, float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.fds)
	}

	fmt.Fprintf(&b, "\n## Operations\n\n| operation | done | failed |\n| --- | --- | --- |\n")
	total := 0
	for _, name := range slices.Sorted(maps.Keys(r.counts)) {
		c := r.counts[name]
		fmt.Fprintf(&b, "| %s | %d | %d |\n", name, c.ok, c.failed)
		if name != "sample" {
			total += c.total()
		}
	}
	fmt.Fprintf(&b, "\n%d in all (samples aside), %.0f a minute. \"leave\" and \"join\" are the peers' departures and returns; \"stop\" the daemons stopped at the end.\n",
		total, float64(total)/r.cfg.duration.Minutes())
	if len(r.failures) > 0 {
		const most = 50
		fmt.Fprintf(&b, "\n## Failures\n\n")
		for _, f := range r.failures[:min(len(r.failures), most)] {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		if len(r.failures) > most {
			fmt.Fprintf(&b, "- and %d more\n", len(r.failures)-most)
		}
	}

	fmt.Fprintf(&b, "\n## The daemons' logs\n\n")
	if lines := append(errLines, warnLines...); len(lines) == 0 {
		fmt.Fprintf(&b, "No ERROR or WARN line in the %d logs (one per daemon start).\n", len(r.logs))
	} else {
		const most = 100
		fmt.Fprintf(&b, "%d ERROR and %d WARN lines in the %d logs (one per daemon start):\n\n```\n%s\n```\n",
			len(errLines), len(warnLines), len(r.logs), strings.Join(lines[:min(len(lines), most)], "\n"))
	}
	fmt.Fprintf(&b, "\n## The watched node's `bsfs stat` at the end\n\n```\n%s\n```\n", strings.TrimSpace(bitswap))

	fmt.Fprintf(&b, "\n## Every sample\n\n| time | RSS | heap in use | goroutines | open fds | operations done |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range r.samples {
		fmt.Fprintf(&b, "| %.0f s | %.1f MiB | %.1f MiB | %d | %d | %d |\n", s.at.Seconds(), float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.goroutines, s.fds, s.ops)
	}
	return b.String()
}
