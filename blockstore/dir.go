package blockstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	flatfs "github.com/ipfs/go-ds-flatfs"

	"github.com/bsfs/bsfs/block"
)

// shardID is the flatfs sharding Kubo uses for its blocks directory: the two
// characters before the last one of the key name the subdirectory.
var shardID = flatfs.NextToLast(2)

// checkLayout reads dir's SHARDING file and returns the shard function it
// names. It fails with ErrLayout when the file is missing or names a
// sharding other than Kubo's, and with an error wrapping fs.ErrNotExist when
// dir does not exist. It never writes.
func checkLayout(dir string) (flatfs.ShardFunc, error) {
	id, err := flatfs.ReadShardFunc(dir)
	switch {
	case err == nil:
		if id.String() != shardID.String() {
			return nil, fmt.Errorf("%w: %s names shard function %q, bsfs uses %q",
				ErrLayout, filepath.Join(dir, flatfs.SHARDING_FN), id.String(), shardID.String())
		}
		return id.Func(), nil
	case errors.Is(err, flatfs.ErrShardingFileMissing):
		if _, serr := os.Stat(dir); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("%w: %s has no %s file", ErrLayout, dir, flatfs.SHARDING_FN)
	default:
		return nil, fmt.Errorf("%w: %s: %v", ErrLayout, filepath.Join(dir, flatfs.SHARDING_FN), err)
	}
}

// keyAlphabet is the characters of block keys (keyEncoding's).
const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// makeShards makes every shard directory shardID can name in dir: one per
// pair of key characters.
func makeShards(dir string) error {
	for _, a := range keyAlphabet {
		for _, b := range keyAlphabet {
			err := os.Mkdir(filepath.Join(dir, string(a)+string(b)), 0o755)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
	}
	return nil
}

// isEmptyDir reports whether dir is missing or has no entries.
func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// files maps keys to block files with the layout flatfs writes, and reads
// them directly. Reads do not go through flatfs so that a read is bounded by
// block.MaxSize and so that a read-only store never opens the directory with
// flatfs, whose Open clears the temporary directory another process (a
// running Kubo) may be writing into.
type files struct {
	root  string
	shard flatfs.ShardFunc
}

// path returns the file a block with key is stored in.
func (f files) path(key string) string {
	return filepath.Join(f.root, f.shard(key), key+fileExt)
}

// read returns the contents of the block file for key. A missing file is
// block.ErrNotFound; a file larger than block.MaxSize is block.ErrTooLarge
// and is not read.
func (f files) read(key string) ([]byte, error) {
	fh, err := os.Open(f.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, block.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > block.MaxSize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, limit %d", block.ErrTooLarge, fh.Name(), st.Size(), block.MaxSize)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(fh, data); err != nil {
		return nil, fmt.Errorf("reading %s: %w", fh.Name(), err)
	}
	return data, nil
}

// size returns the size of the block file for key; a missing file is
// block.ErrNotFound.
func (f files) size(key string) (int, error) {
	st, err := os.Stat(f.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, block.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return int(st.Size()), nil
}
