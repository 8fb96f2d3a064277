package unixfs

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// AddSize adds up the sizes of the regular files at or below path that
// AddPath would read with the given Hidden option, for a progress total.
func AddSize(path string, hidden bool) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && !hidden && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}
