//go:build race

package fs_test

// raceEnabled: the race detector slows every read; the tests read less.
const raceEnabled = true
