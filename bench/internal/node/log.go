package node

import (
	"bufio"
	"os"
	"regexp"
)

// levelRE finds a log line's level as the loggers in the daemons print it:
// slog's text ("level=WARN") and default ("2006/01/02 15:04:05 WARN")
// formats, and go-log's tab-separated one ("...\tERROR\tswarm2\t...").
var levelRE = regexp.MustCompile(`\b(ERROR|WARN(?:ING)?)\b`)

// Level returns "ERROR" or "WARN" for a log line at that level, else "".
func Level(line string) string {
	switch levelRE.FindString(line) {
	case "ERROR":
		return "ERROR"
	case "":
		return ""
	}
	return "WARN"
}

// ScanLog returns the lines of a log file at level ERROR and at WARN.
func ScanLog(path string) (errs, warns []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		switch Level(sc.Text()) {
		case "ERROR":
			errs = append(errs, sc.Text())
		case "WARN":
			warns = append(warns, sc.Text())
		}
	}
	return errs, warns, sc.Err()
}
