package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample is the watched node at one moment.
type sample struct {
	at         time.Duration // since the work began
	rss, heap  int64         // bytes: resident set, heap in use
	goroutines int
	fds        int
	ops        int // operations done so far
}

// sampler samples the watched node every cfg.sample until the deadline.
// With -profile it saves profiles at the first sample past two minutes
// and at the last.
func (r *runner) sampler(ctx context.Context) {
	t := time.NewTicker(r.cfg.sample)
	defer t.Stop()
	saved := false
	for {
		s, err := r.measure(ctx)
		r.done("sample", err)
		if err == nil {
			r.samples = append(r.samples, s)
			if !saved && s.at >= 2*time.Minute {
				r.saveProfiles(ctx, "minute-2")
				saved = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.running(ctx) {
			r.saveProfiles(ctx, "end")
			return
		}
	}
}

// measure reads the watched node's /proc entries and its metrics.
func (r *runner) measure(ctx context.Context) (sample, error) {
	s := sample{at: time.Since(r.deadline.Add(-r.cfg.duration))}
	p := r.watched.n.Proc
	var err error
	if s.rss, err = p.RSS(); err != nil {
		return s, err
	}
	if s.fds, err = p.FDs(); err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := r.watched.n.Debug(ctx, "/metrics")
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	g, err1 := metric(string(raw), "go_goroutines")
	h, err2 := metric(string(raw), "go_memstats_heap_inuse_bytes")
	if err := errors.Join(err1, err2); err != nil {
		return s, err
	}
	s.goroutines, s.heap = int(g), int64(h)
	r.mu.Lock()
	for name, c := range r.counts {
		if name != "sample" {
			s.ops += c.total()
		}
	}
	r.mu.Unlock()
	return s, nil
}

// saveProfiles saves the watched node's goroutines (as text) and heap
// profile in the -profile directory, named after tag.
func (r *runner) saveProfiles(ctx context.Context, tag string) {
	if r.cfg.profile == "" {
		return
	}
	for _, p := range []struct{ path, file string }{
		{"/debug/pprof/goroutine?debug=1", "goroutines.txt"},
		{"/debug/pprof/heap", "heap.pprof"},
	} {
		raw, err := r.watched.n.Debug(ctx, p.path)
		if err == nil {
			err = os.WriteFile(filepath.Join(r.cfg.profile, "watched-"+tag+"."+p.file), raw, 0o644)
		}
		if err != nil {
			r.logf("profile %s: %v", tag, err)
		}
	}
}

// total is how many ran; c may be nil.
func (c *count) total() int {
	if c == nil {
		return 0
	}
	return c.ok + c.failed
}

// metric returns the value of a metric without labels in a Prometheus
// text exposition.
func metric(text, name string) (float64, error) {
	for line := range strings.SplitSeq(text, "\n") {
		v, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		// "name value" or "name value timestamp"
		f, err := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(strings.TrimSpace(v), " ", 2)[0]), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return f, nil
	}
	return 0, fmt.Errorf("no metric %s", name)
}
