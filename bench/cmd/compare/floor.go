package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// floorShards is how many directories the floor spreads block files over,
// as a flatfs store of either implementation does (next-to-last/2).
const floorShards = 1024

// fileSet is a number of files of one size, in shards directories.
type fileSet struct {
	n, size, shards int
}

// writeFloor writes the file sets under a new directory in the work
// directory the plainest way a program can: one file after another, each
// created, written whole and closed, its shard directory made when first
// needed; no fsync, like both stores. It returns the time taken: the least
// file-system work a client of the run did, measured on the file system as
// the run left it. The files go to the trash, deleted at the end of the
// row, so that their deletion does not fall on the next run.
func (r *runner) writeFloor(sets ...fileSet) (time.Duration, error) {
	r.seq++
	dir := filepath.Join(r.work, fmt.Sprintf("floor-%d", r.seq))
	r.discard(dir)
	start := time.Now()
	for s, set := range sets {
		buf := make([]byte, set.size)
		made := map[int]bool{}
		for i := range set.n {
			buf[0], buf[1], buf[2] = byte(i), byte(i>>8), byte(i>>16) // distinct contents
			shard := filepath.Join(dir, fmt.Sprintf("%d-%04d", s, i%set.shards))
			if !made[i%set.shards] {
				if err := os.MkdirAll(shard, 0o755); err != nil {
					return 0, err
				}
				made[i%set.shards] = true
			}
			if err := os.WriteFile(filepath.Join(shard, fmt.Sprintf("%08d", i)), buf, 0o644); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

// discard puts dir in the trash, deleted at the end of the row. Runs
// delete nothing: on ext4 without a journal (as here), creating a file
// reads the table entry of each free inode it passes and skips those freed
// in the last minutes, so deleting one run's thousands of files right
// before the next would put the next one's file creation on that slow path.
func (r *runner) discard(dir string) {
	r.trashMu.Lock()
	defer r.trashMu.Unlock()
	r.trash = append(r.trash, dir)
}

// emptyTrash deletes what the row's runs left for later.
func (r *runner) emptyTrash() {
	r.trashMu.Lock()
	defer r.trashMu.Unlock()
	for _, dir := range r.trash {
		r.note(os.RemoveAll(dir))
	}
	r.trash = nil
}
