package node

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLevel(t *testing.T) {
	for line, want := range map[string]string{
		"2026/11/25 10:00:00 WARN routing: bootstrap err=x":                "WARN",
		`time=2026-11-25T10:00:00Z level=ERROR msg="read failed" cid=bafy`: "ERROR",
		"2026-11-25T10:00:00.000Z\tERROR\tswarm2\tswarm/swarm.go:1\tboom":  "ERROR",
		"2026-11-25T10:00:00.000Z\tWARNING\tnet\tclosing":                  "WARN",
		"Daemon is ready":                                              "",
		"time=x level=INFO msg=ERRORS_SEEN=0":                          "",
		"Swarm listening on /ip4/127.0.0.1/tcp/4002/p2p/12D3KooWERROR": "",
	} {
		if got := Level(line); got != want {
			t.Errorf("Level(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestScanLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.log")
	log := "PeerID: x\nDaemon is ready\n2026/11/25 10:00:00 WARN slow\n2026/11/25 10:00:01 ERROR broken\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	errs, warns, err := ScanLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(errs, []string{"2026/11/25 10:00:01 ERROR broken"}) || !slices.Equal(warns, []string{"2026/11/25 10:00:00 WARN slow"}) {
		t.Errorf("ScanLog = %q, %q", errs, warns)
	}
	if _, _, err := ScanLog(path + ".missing"); err == nil {
		t.Error("ScanLog of a missing file: no error")
	}
}
