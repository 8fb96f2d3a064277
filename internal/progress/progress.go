// Package progress draws a progress bar for long commands on a terminal
// and nothing anywhere else, so scripts and logs see only the output.
package progress

import (
	"io"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// throttle is how often a bar is redrawn at most.
const throttle = 100 * time.Millisecond

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar of bytes; its zero value draws nothing.
type Bar struct {
	bar *progressbar.ProgressBar // nil when not shown
}

// New shows a bar of total bytes (-1: unknown) named what on w if w is a
// terminal.
func New(w io.Writer, total int64, what string) Bar {
	if !IsTerminal(w) {
		return Bar{}
	}
	return Bar{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

// Set moves the bar to n bytes.
func (b Bar) Set(n int64) {
	if b.bar != nil {
		b.bar.Set64(n)
	}
}

// Done removes the bar.
func (b Bar) Done() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar.Clear()
	}
}

// Blocks is a progress bar of blocks whose number is not known ahead: it
// shows the blocks done, their rate and their bytes. Its zero value draws
// nothing.
type Blocks struct {
	bar  *progressbar.ProgressBar // nil when not shown
	what string
}

// NewBlocks shows a bar of blocks named what on w if w is a terminal.
func NewBlocks(w io.Writer, what string) Blocks {
	if !IsTerminal(w) {
		return Blocks{}
	}
	return Blocks{what: what, bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("blocks"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

// Set moves the bar to n blocks of size bytes in all.
func (b Blocks) Set(n, size int64) {
	if b.bar != nil {
		b.bar.Describe(b.what + " " + humanize.Bytes(uint64(max(size, 0))))
		b.bar.Set64(n)
	}
}

// Done removes the bar.
func (b Blocks) Done() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar.Clear()
	}
}
