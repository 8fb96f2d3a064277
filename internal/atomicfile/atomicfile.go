// Package atomicfile writes small files so that a crash leaves the old
// content or the new, never a torn file: the data goes to a temporary file
// in the same directory (named "."+base+"-*.tmp", mode 0600), is synced,
// then takes the file's name, and the directory is synced.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path by a file holding data.
func Write(path string, data []byte) error {
	return write(path, data, os.Rename)
}

// WriteNew is Write for a path that must not exist yet: it fails with an
// error wrapping fs.ErrExist rather than replace a file.
func WriteNew(path string, data []byte) error {
	return write(path, data, os.Link)
}

// write writes data to a temporary file and gives it path's name with
// place (rename or link).
func write(path string, data []byte, place func(oldpath, newpath string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if err := errors.Join(err, tmp.Close()); err != nil {
		return err
	}
	if err := place(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or link in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
