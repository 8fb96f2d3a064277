package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/unixfs"
)

// BenchmarkFetchThroughQuota fetches a file from an in-process peer over
// loopback through unixfs and the exchange, into a store with a quota of a
// quarter of the file and into one with no quota, sampling the store's
// size on disk meanwhile. BSFS_BENCH_FETCH_MIB sets the file's size
// (default 256 MiB; the figure is 2048).
func BenchmarkFetchThroughQuota(b *testing.B) {
	size := int64(256)
	if s := os.Getenv("BSFS_BENCH_FETCH_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("BSFS_BENCH_FETCH_MIB=%q", s)
		}
		size = n
	}
	size <<= 20
	src, err := blockstore.Open(b.TempDir(), blockstore.Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	root, err := unixfs.AddFile(b.Context(), src, io.LimitReader(&seeded{}, size), unixfs.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	provider := newNode(b, src)
	for _, quota := range []int64{size / 4, -1} {
		name := "quota=none"
		if quota > 0 {
			name = fmt.Sprintf("quota=%dMiB", quota>>20)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				dir := b.TempDir()
				bs, err := blockstore.Open(dir, blockstore.Config{NoSync: true})
				if err != nil {
					b.Fatal(err)
				}
				c, err := Open(b.Context(), b.TempDir(), bs, Config{Quota: quota})
				if err != nil {
					b.Fatal(err)
				}
				fetcher := newNode(b, c)
				testnode.Connect(b, fetcher.Host, provider.Host)
				stop := sample(b, dir)
				b.StartTimer()
				start := time.Now()
				n := readFile(b, unixfs.New(c.Getter(fetcher.Ex), unixfs.Config{}), root)
				elapsed := time.Since(start)
				b.StopTimer()
				peak := stop()
				if n != size {
					b.Fatalf("read %d bytes, want %d", n, size)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
				b.Logf("%s: %d MiB in %v (%.0f MB/s), store peak %d MiB", name, size>>20, elapsed.Round(time.Millisecond), float64(size)/1e6/elapsed.Seconds(), peak>>20)
				fetcher.Ex.Close()
				fetcher.Host.Close()
				c.Close()
				bs.Close()
			}
		})
	}
}

// readFile reads root to the end and returns its size.
func readFile(b *testing.B, r *unixfs.Reader, root cid.Cid) int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	f, err := r.Open(ctx, root)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := f.ReadAt(ctx, buf, off)
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return off
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// sample measures the block files under dir every 200 ms until the
// returned stop, which returns the largest size seen and logs a few.
func sample(b *testing.B, dir string) (stop func() int64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	var seen []string
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		for i := 0; ; i++ {
			n := duBlocks(dir)
			peak = max(peak, n)
			if i%10 == 0 {
				seen = append(seen, fmt.Sprintf("%.0fs:%dMiB", time.Since(start).Seconds(), n>>20))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		b.Logf("store size samples: %v", seen)
		return peak
	}
}

// duBlocks adds up the sizes of the files under dir.
func duBlocks(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			total += fi.Size()
		}
		return nil
	})
	return total
}

// seeded is an endless reader of pseudo-random bytes, so that no two
// leaves are alike.
type seeded struct{ n uint64 }

func (s *seeded) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		s.n++
		x := s.n * 0x9E3779B97F4A7C15
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(x >> (8 * j))
		}
	}
	return len(p), nil
}
