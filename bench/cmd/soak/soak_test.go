package main

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMetric(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_goroutines_extra 7
go_memstats_heap_inuse_bytes 7.962624e+06
bsfs_fuse_read_seconds_bucket{le="5e-05"} 0
with_timestamp 3 1700000000000
`
	for name, want := range map[string]float64{"go_goroutines": 42, "go_memstats_heap_inuse_bytes": 7962624, "with_timestamp": 3} {
		if got, err := metric(text, name); err != nil || got != want {
			t.Errorf("metric(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"missing", "bsfs_fuse_read_seconds_bucket", "go_"} {
		if _, err := metric(text, name); err == nil {
			t.Errorf("metric(%s): no error", name)
		}
	}
}

func TestWindowsAndGrowth(t *testing.T) {
	var samples []sample
	for i := range 31 { // every 10 s for 5 minutes
		at := time.Duration(i) * 10 * time.Second
		// Warming up in the first minute, then flat, but for goroutines
		// that keep climbing in the last minute.
		rss := int64(100 << 20)
		if at < time.Minute {
			rss = int64(20+i*10) << 20
		}
		g := 100
		if at >= 4*time.Minute {
			g = 200 + i
		}
		samples = append(samples, sample{at: at, rss: rss, heap: rss / 4, goroutines: g, fds: 30})
	}
	ws := windows(samples, 5*time.Minute)
	if ws[0].n != 6 || ws[1].n != 6 || ws[2].n != 7 {
		t.Fatalf("samples in the windows: %d, %d, %d; want 6, 6, 7", ws[0].n, ws[1].n, ws[2].n)
	}
	if ws[1].rss != 100<<20 || ws[2].rss != 100<<20 || ws[0].rss >= ws[1].rss {
		t.Errorf("RSS medians %v, %v, %v", ws[0].rss, ws[1].rss, ws[2].rss)
	}
	if ws[1].goroutines != 100 || ws[2].goroutines != 200+27 {
		t.Errorf("goroutine medians %v, %v; want 100, 227", ws[1].goroutines, ws[2].goroutines)
	}
	grew := growth(ws[1], ws[2], 1.5, 1.5)
	if len(grew) != 1 || !strings.Contains(grew[0], "goroutines grew 2.27×") {
		t.Errorf("growth = %q; want the goroutines only", grew)
	}
	if grew := growth(ws[1], ws[2], 3, 1.5); len(grew) != 0 {
		t.Errorf("growth within the bounds = %q", grew)
	}
	if grew := growth(ws[1], window{}, 1.5, 1.5); len(grew) != 1 || !strings.Contains(grew[0], "too few samples") {
		t.Errorf("growth without a last minute = %q", grew)
	}
}

func TestContentMatchesFile(t *testing.T) {
	dir := t.TempDir()
	f := file{size: 3<<20 + 5, seed: 77}
	path := filepath.Join(dir, "a", "f")
	if err := writeFile(path, &f); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != f.size || sha256.Sum256(raw) != f.sum {
		t.Fatalf("file of %d bytes, sum %x; want %d bytes, sum %x", len(raw), sha256.Sum256(raw), f.size, f.sum)
	}
	for _, r := range [][2]int64{{0, 1}, {0, f.size}, {1 << 20, 12345}, {f.size - 1, 1}} {
		if got := content(f.seed, r[0], r[1]); !bytes.Equal(got, raw[r[0]:r[0]+r[1]]) {
			t.Errorf("content(%d, +%d) differs from the file", r[0], r[1])
		}
	}
	if bytes.Equal(content(78, 0, 64), raw[:64]) {
		t.Error("another seed gives the same bytes")
	}
}

func TestMakeItem(t *testing.T) {
	r := &runner{work: t.TempDir()}
	rng := rand.New(rand.NewPCG(1, 2))
	dirs, files := 0, 0
	for range 24 {
		path, it, err := r.makeItem(rng)
		if err != nil {
			t.Fatal(err)
		}
		if !it.dir {
			files++
			if len(it.files) != 1 || it.files[0].path != "" {
				t.Fatalf("a file item has files %+v", it.files)
			}
			continue
		}
		dirs++
		ents, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, it.top) {
			t.Errorf("directory holds %q, item says %q", names, it.top)
		}
		for _, f := range it.files {
			raw, err := os.ReadFile(filepath.Join(path, f.path))
			if err != nil || sha256.Sum256(raw) != f.sum {
				t.Errorf("%s: %v, or not the bytes described", f.path, err)
			}
		}
	}
	if dirs == 0 || files == 0 {
		t.Errorf("24 items: %d directories, %d files; want both kinds", dirs, files)
	}
}

func TestPickOpAndJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]int{}
	for range 5000 {
		seen[pickOp(rng).name]++
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	for _, o := range ops {
		// Each within a third of its share of 5000 picks.
		want := 5000 * o.weight / total
		if n := seen[o.name]; n < want*2/3 || n > want*4/3 {
			t.Errorf("%s picked %d times of 5000, want about %d", o.name, n, want)
		}
	}
	for range 1000 {
		if d := jitter(rng, 40*time.Second); d < 20*time.Second || d > 60*time.Second {
			t.Fatalf("jitter(40s) = %v, outside 20s–60s", d)
		}
	}
	for range 1000 {
		if n := fileSize(rng); n < 0 || n > 24<<20 {
			t.Fatalf("fileSize = %d", n)
		}
	}
}
