package blockstore

// Config tunes a Blockstore. The zero value syncs every write to disk,
// verifies every read and allows writes.
type Config struct {
	// NoSync skips fsync of block files and directories. Faster; a power
	// loss may then lose recent blocks (which reads detect as missing or
	// corrupt). Kubo v0.42 runs its flatfs with sync off.
	NoSync bool
	// ReadOnly opens an existing store without ever writing to its
	// directory: writes fail with ErrReadOnly.
	ReadOnly bool
	// NoVerify skips hashing the data of every Get.
	NoVerify bool
	// ShardsAhead makes all 1024 shard directories when Open creates the
	// store, so that its first blocks are not each slowed by a mkdir (about
	// 4 MiB of directories on ext4). A store filled with a few thousand
	// blocks has them all anyway.
	ShardsAhead bool
}
