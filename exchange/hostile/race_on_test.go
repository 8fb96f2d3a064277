//go:build race

package hostile_test

// raceEnabled: the race detector changes how memory is allocated and kept
// (sync.Pool drops items, allocations grow), so heap bounds are not checked.
const raceEnabled = true
