package cache

import (
	"testing"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/storetest"
)

// The cache and the union are block stores like the Blockstore beneath.
func TestSuite(t *testing.T) {
	t.Run("Cache", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, seed ...block.Block) storetest.Target {
			bs := storetest.Seeded(t, t.TempDir(), blockstore.Config{NoSync: true}, seed...)
			return storetest.Target{Store: open(t, t.TempDir(), bs, -1), Disk: bs}
		})
	})
	t.Run("Union", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, seed ...block.Block) storetest.Target {
			own := storetest.Seeded(t, t.TempDir(), blockstore.Config{NoSync: true}, seed...)
			shared := storetest.Seeded(t, t.TempDir(), blockstore.Config{ReadOnly: true})
			return storetest.Target{Store: Union{Own: own, Shared: shared}, Disk: own}
		})
	})
}
