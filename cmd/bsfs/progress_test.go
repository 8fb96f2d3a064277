package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// runOnTerminal runs the binary with stderr on a pseudo-terminal and
// stdout on a pipe, and returns what each got.
func runOnTerminal(t *testing.T, repoPath string, args ...string) (stdout, terminal string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bsfsBin, args...)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repoPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var term bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(&term, ptmx) // ends with EIO once the child has closed it
	}()
	err = cmd.Wait()
	<-read
	if err != nil {
		t.Fatalf("bsfs %s: %v; terminal: %q", strings.Join(args, " "), err, term.String())
	}
	return out.String(), term.String()
}

// The long commands draw a progress bar on stderr when it is a terminal,
// none with -q, and write nothing to stderr when it is not a terminal.
func TestProgressOnlyOnTerminal(t *testing.T) {
	repo := t.TempDir()
	path, _ := randomFile(t, 3<<20)
	file := strings.TrimSpace(ok(t, repo, "", "add", "-Q", path))
	car := filepath.Join(t.TempDir(), "f.car")
	if err := os.WriteFile(car, []byte(ok(t, repo, "", "export", file)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, tc := range []struct {
		args []string
		bar  string // what the bar shows
	}{
		{[]string{"add", path}, "adding"},
		{[]string{"dag", "stat", file}, "walking"},
		{[]string{"refs", "-r", file}, "walking"},
		{[]string{"export", file}, "exporting"},
		{[]string{"import", car}, "importing"},
		{[]string{"get", file, "-o", filepath.Join(out, "got")}, "fetching"},
	} {
		args := tc.args
		if res := bsfs(t, repo, "", args...); res.code != 0 || res.stderr != "" {
			t.Errorf("bsfs %s, stderr a pipe: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
		}
		if args[0] == "get" {
			args = []string{"get", file, "-o", filepath.Join(out, "again")}
		}
		stdout, term := runOnTerminal(t, repo, args...)
		if !strings.Contains(term, tc.bar) || !strings.Contains(term, "\r") {
			t.Errorf("bsfs %s, stderr a terminal: %q, want a bar %q", strings.Join(args, " "), term, tc.bar)
		}
		if strings.Contains(stdout, tc.bar) {
			t.Errorf("bsfs %s: the bar went to stdout", strings.Join(args, " "))
		}
		if args[0] == "get" {
			args = []string{"get", file, "-o", filepath.Join(out, "quiet")}
		}
		if _, term := runOnTerminal(t, repo, append(args, "-q")...); term != "" {
			t.Errorf("bsfs %s -q, stderr a terminal: %q, want nothing", strings.Join(args, " "), term)
		}
	}
	if _, term := runOnTerminal(t, repo, "dag", "stat", "--progress=false", file); term != "" {
		t.Errorf("dag stat --progress=false on a terminal: %q", term)
	}
}
