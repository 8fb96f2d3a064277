// Package progress draws a progress bar for long commands on a terminal
// and nothing anywhere else, so scripts and logs see only the output.
package progress

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar is a progress bar of bytes; its zero value draws nothing.
type Bar struct {
	bar *progressbar.ProgressBar // nil when not shown
}

// New shows a bar of total bytes (-1: unknown) named what on w if w is a
// terminal.
func New(w io.Writer, total int64, what string) Bar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return Bar{}
	}
	return Bar{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
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
