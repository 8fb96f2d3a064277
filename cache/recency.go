package cache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/multiformats/go-base32"

	"github.com/bsfs/bsfs/internal/atomicfile"
)

// recencyFile is the log of uses and deletions. Each line is "u KEY SIZE"
// (KEY, SIZE bytes, was used) or "d KEY" (KEY was deleted), KEY the
// unpadded base32 of the multihash. A line left incomplete by a crash is
// ignored.
const recencyFile = "recency"

// Log sizes: the buffer written out at once, and when to compact.
const (
	logBuffer     = 32 << 10
	compactSlack  = 4096 // records beyond the live entries before compacting
	compactFactor = 4
)

// logEntry is one live entry of a replayed log.
type logEntry struct {
	key  string
	size int64
}

// recencyLog appends records to the recency file. It is not safe for
// concurrent use: the Cache guards it with its mutex.
type recencyLog struct {
	dir     string
	f       *os.File
	w       *bufio.Writer
	records int // in the file and the buffer
	live    int // entries the records amount to
	err     error
}

// openRecencyLog replays dir's recency file and returns its live entries,
// least recently used first, and the log opened for appending (compacted
// if it had grown).
func openRecencyLog(dir string) ([]logEntry, *recencyLog, error) {
	path := filepath.Join(dir, recencyFile)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("cache: %w", err)
	}
	type rec struct {
		logEntry
		seq int
	}
	latest := make(map[string]rec)
	records := 0
	for line := range bytes.Lines(data) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			break // incomplete: the write a crash cut short
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		records++
		key, err := base32.RawStdEncoding.DecodeString(string(f[1]))
		if err != nil {
			continue
		}
		switch {
		case string(f[0]) == "u" && len(f) == 3:
			if size, err := strconv.ParseInt(string(f[2]), 10, 64); err == nil && size >= 0 {
				latest[string(key)] = rec{logEntry{string(key), size}, records}
			}
		case string(f[0]) == "d" && len(f) == 2:
			delete(latest, string(key))
		}
	}
	recs := slices.SortedFunc(maps.Values(latest), func(a, b rec) int { return a.seq - b.seq })
	entries := make([]logEntry, len(recs))
	for i, r := range recs {
		entries[i] = r.logEntry
	}
	l := &recencyLog{dir: dir, records: records, live: len(entries)}
	if l.mustCompact() || data == nil {
		return entries, l, l.rewrite(entries)
	}
	if err := l.openAppend(); err != nil {
		return nil, nil, err
	}
	return entries, l, nil
}

func (l *recencyLog) openAppend() error {
	f, err := os.OpenFile(filepath.Join(l.dir, recencyFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	l.f, l.w = f, bufio.NewWriterSize(f, logBuffer)
	return nil
}

func (l *recencyLog) mustCompact() bool {
	return l.records > compactFactor*l.live+compactSlack
}

// use records that key, size bytes, was used.
func (l *recencyLog) use(key string, size int64) {
	l.append("u " + base32.RawStdEncoding.EncodeToString([]byte(key)) + " " + strconv.FormatInt(size, 10) + "\n")
}

// drop records that key was deleted.
func (l *recencyLog) drop(key string) {
	l.append("d " + base32.RawStdEncoding.EncodeToString([]byte(key)) + "\n")
}

// append buffers one record. A write error is kept and returned by flush
// and close: recency is an optimisation, never a reason to fail a read.
func (l *recencyLog) append(rec string) {
	if l.err != nil || l.w == nil {
		return
	}
	// A record never straddles two writes, so a crash cuts at most the
	// last line.
	if l.w.Available() < len(rec) {
		l.err = l.w.Flush()
	}
	if _, err := l.w.WriteString(rec); err != nil && l.err == nil {
		l.err = err
	}
	l.records++
}

// flush writes the buffered records out.
func (l *recencyLog) flush() error {
	if l.w == nil {
		return l.err
	}
	if err := l.w.Flush(); err != nil && l.err == nil {
		l.err = err
	}
	return l.err
}

// compact rewrites the log from live, the index least recently used
// first, if the log has grown beyond compactFactor times n live entries.
func (l *recencyLog) compact(n int, live func() []logEntry) error {
	l.live = n
	if !l.mustCompact() {
		return nil
	}
	return l.rewrite(live())
}

// rewrite replaces the file with one record per entry, atomically.
func (l *recencyLog) rewrite(entries []logEntry) error {
	if l.f != nil {
		l.w.Flush()
		l.f.Close()
		l.f, l.w = nil, nil
	}
	var buf bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&buf, "u %s %d\n", base32.RawStdEncoding.EncodeToString([]byte(e.key)), e.size)
	}
	if err := atomicfile.Write(filepath.Join(l.dir, recencyFile), buf.Bytes()); err != nil {
		return fmt.Errorf("cache: compacting the recency log: %w", err)
	}
	l.records, l.live, l.err = len(entries), len(entries), nil
	return l.openAppend()
}

// close flushes and closes the file.
func (l *recencyLog) close() error {
	err := l.flush()
	if l.f != nil {
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
		l.f, l.w = nil, nil
	}
	return err
}
