//go:build race

package main

// raceBuild makes TestMain build the binary with the race detector too.
const raceBuild = true

// crashFileSize is the file TestCrashMidFetch fetches and interrupts.
const crashFileSize = 32 << 20
