//go:build !race

package hostile_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
