package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bsfs/bsfs/repo"
)

// checkPrivate refuses a bsfs repository whose config would take its node
// off the loopback interface (see repo.Config.CheckPrivate). A repository
// not created yet passes: Env has it made with the test profile.
func checkPrivate(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "config")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c, err := repo.ReadConfig(dir)
	if err != nil {
		return err
	}
	if err := c.CheckPrivate(); err != nil {
		return fmt.Errorf("bsfs repository %s: %w: benchmarks run on loopback only", dir, err)
	}
	return nil
}
