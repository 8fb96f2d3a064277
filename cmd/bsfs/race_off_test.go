//go:build !race

package main

// raceBuild makes TestMain build the binary with the race detector too.
const raceBuild = false

// crashFileSize is the file TestCrashMidFetch fetches and interrupts.
const crashFileSize = 256 << 20
