package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bsfs/bsfs/bench/internal/node"
	"github.com/bsfs/bsfs/bench/internal/stat"
)

// seconds returns the times of the clients that completed, in seconds.
func (rd round) seconds() []float64 {
	var s []float64
	for _, d := range rd.times {
		if d > 0 {
			s = append(s, d.Seconds())
		}
	}
	return s
}

// ratio is the slowest client's time over the fastest's; 0 if none
// completed.
func (rd round) ratio() float64 {
	s := rd.seconds()
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s) / slices.Min(s)
}

// passed reports whether every client completed, within maxRatio.
func (rd round) passed(maxRatio float64) bool {
	return len(rd.errs) == 0 && len(rd.seconds()) == len(rd.times) && rd.ratio() <= maxRatio
}

// summary is the round in one line.
func (rd round) summary(maxRatio float64) string {
	s := rd.seconds()
	if len(s) == 0 {
		return fmt.Sprintf("no client completed; FAILED (%d errors)", len(rd.errs))
	}
	verdict := "ok"
	if !rd.passed(maxRatio) {
		verdict = "FAILED"
	}
	return fmt.Sprintf("%d/%d clients in %.2f–%.2f s (median %.2f): slowest/fastest %.2f (at most %.2f) %s; server sent %.0f MB, peak RSS %.0f MiB; clients' duplicate data %.1f MB",
		len(s), len(rd.times), slices.Min(s), slices.Max(s), stat.Median(s), rd.ratio(), maxRatio, verdict,
		float64(rd.sent)/1e6, float64(rd.serverRSS)/(1<<20), float64(rd.dup)/1e6)
}

// report is the results file.
func (r *runner) report(p problems, ok bool) string {
	var b strings.Builder
	verdict := "passed"
	if !ok {
		verdict = "FAILED"
	}
	connected := "to the server only"
	if r.cfg.mesh {
		connected = "to the server and to each other"
	}
	fmt.Fprintf(&b, `# Many clients, one server (issue 9, case 17)

Measured by `+"`%s`"+` on %s, in %v: **%s**.

- Machine: %s. Shared with other work.
- bsfs %s, %s.
- One bsfs server daemon holds a %d MiB file (random bytes, `+"`bsfs add`"+`);
  each round starts it and %d fresh bsfs client daemons, all on 127.0.0.1
  over TCP, with `+"`%s`"+`, clients connected %s. Every
  client then runs `+"`bsfs cat <cid>`"+` at the same moment; each one's output
  is checked against the file's SHA-256.
- A round passes when every client gets the whole file and the slowest
  client's time over the fastest's is at most %.2f; the run passes when
  every round does and no daemon logged an ERROR line.

| round | clients done | fastest | median | slowest | slowest / fastest | all done in | total | server sent | server peak RSS | clients' dup data | |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
`, r.cfg.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(r.started).Round(time.Second), verdict,
		node.Machine(), r.cfg.version, runtime.Version(), r.cfg.mib, r.cfg.clients, strings.Join(r.flags, " "), connected, r.cfg.maxRatio)
	for i, rd := range r.rounds {
		s := rd.seconds()
		v := "ok"
		if !rd.passed(r.cfg.maxRatio) {
			v = "**failed**"
		}
		if len(s) == 0 {
			fmt.Fprintf(&b, "| %d | 0/%d | | | | | | | | | | %s |\n", i+1, len(rd.times), v)
			continue
		}
		total := float64(int64(len(s))*r.size) / 1e6 / rd.wall.Seconds()
		fmt.Fprintf(&b, "| %d | %d/%d | %.2f s | %.2f s | %.2f s | %.2f | %.2f s | %.0f MB/s | %.0f MB | %.0f MiB | %.1f MB | %s |\n",
			i+1, len(s), len(rd.times), slices.Min(s), stat.Median(s), slices.Max(s), rd.ratio(), rd.wall.Seconds(), total,
			float64(rd.sent)/1e6, float64(rd.serverRSS)/(1<<20), float64(rd.dup)/1e6, v)
	}
	fmt.Fprintf(&b, "\nEach client's time, in seconds, in the order they were started:\n\n")
	for i, rd := range r.rounds {
		var ts []string
		for _, d := range rd.times {
			if d > 0 {
				ts = append(ts, fmt.Sprintf("%.2f", d.Seconds()))
			} else {
				ts = append(ts, "failed")
			}
		}
		fmt.Fprintf(&b, "- round %d: %s\n", i+1, strings.Join(ts, ", "))
	}
	var errs []string
	for i, rd := range r.rounds {
		for _, e := range rd.errs {
			errs = append(errs, fmt.Sprintf("- round %d: %s", i+1, node.OneLine(e)))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(&b, "\n## Failures\n\n%s\n", strings.Join(errs, "\n"))
	}
	fmt.Fprintf(&b, "\n## The daemons' logs\n\n")
	if len(p.lines) == 0 {
		fmt.Fprintf(&b, "No ERROR or WARN line in the logs of the %d daemons.\n", len(r.logs))
	} else {
		fmt.Fprintf(&b, "%d ERROR lines; the ERROR and WARN lines of the %d daemons' logs:\n\n```\n%s\n```\n", p.errors, len(r.logs), strings.Join(p.lines, "\n"))
	}
	return b.String()
}
