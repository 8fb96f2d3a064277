package blockstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	flatfs "github.com/ipfs/go-ds-flatfs"
)

// addDiskUsage adds n bytes to the disk usage flatfs recorded in the store
// in root when it closed, for the files written outside flatfs. Kubo reads
// that record when it opens the store (a missing record makes it walk the
// whole store). The record is replaced by a rename, as flatfs replaces it.
func addDiskUsage(root string, n int64, sync bool) error {
	if n == 0 {
		return nil
	}
	path := filepath.Join(root, flatfs.DiskUsageFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // flatfs counts the store again when it opens it
	}
	if err != nil {
		return fmt.Errorf("blockstore: disk usage: %w", err)
	}
	var rec map[string]json.RawMessage
	var du int64
	if err := json.Unmarshal(raw, &rec); err != nil {
		return fmt.Errorf("blockstore: disk usage %s: %w", path, err)
	}
	if err := json.Unmarshal(rec["diskUsage"], &du); err != nil {
		return fmt.Errorf("blockstore: disk usage %s: %w", path, err)
	}
	if rec["diskUsage"], err = json.Marshal(du + n); err != nil {
		return err
	}
	if raw, err = json.Marshal(rec); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(root, ".temp"), "du-")
	if err != nil {
		return fmt.Errorf("blockstore: disk usage: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(raw)
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("blockstore: disk usage: %w", err)
	}
	return nil
}
