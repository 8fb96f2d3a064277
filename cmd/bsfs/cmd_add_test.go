package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/treetest"
	repopkg "github.com/bsfs/bsfs/repo"
)

// randomFile writes n random bytes to a new file and returns its path and
// the bytes.
func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	return writeFile(t, data), data
}

// makeTree writes a small tree with a nested file, an executable, an empty
// directory and a symlink.
func makeTree(t *testing.T) string {
	t.Helper()
	return treetest.Tree{
		Files: map[string]string{"a.txt": "alpha\n", "sub/b.txt": "bravo\n", "sub/run.sh": "#!/bin/sh\n"},
		Dirs:  []string{"empty"},
		Links: map[string]string{"link": "sub/b.txt"},
	}.Write(t)
}

// checkTree compares the tree get wrote at dir with makeTree's.
func checkTree(t *testing.T, dir string) {
	t.Helper()
	for name, want := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "bravo\n", "sub/run.sh": "#!/bin/sh\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "sub/b.txt" {
		t.Errorf("link: %q, %v", target, err)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "empty")); err != nil || len(ents) != 0 {
		t.Errorf("empty: %v, %v", ents, err)
	}
}

func rootsOf(t *testing.T, repo string) []cid.Cid {
	t.Helper()
	r, err := repopkg.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	roots, err := r.Roots()
	if err != nil {
		t.Fatal(err)
	}
	return roots
}

// Without a daemon, add stores into the repository and cat and get read it.
func TestAddCatGetOffline(t *testing.T) {
	repo := t.TempDir()
	path, data := randomFile(t, 3<<20+5)
	out := lines(ok(t, repo, "", "add", path))
	if len(out) != 1 || !strings.HasPrefix(out[0], "added bafybei") || !strings.HasSuffix(out[0], " input") {
		t.Fatalf("add printed %q, want one line \"added <cid> input\"", out)
	}
	c := strings.Fields(out[0])[1]
	if got := ok(t, repo, "", "cat", c); got != string(data) {
		t.Errorf("cat: %d bytes, want the %d added", len(got), len(data))
	}
	if got := strings.TrimSpace(ok(t, repo, "", "add", "-Q", path)); got != c {
		t.Errorf("add -Q printed %q, want %s", got, c)
	}

	// stdin: the name is the CID, as Kubo prints it.
	out = lines(ok(t, repo, "hello\n", "add", "-"))
	if len(out) != 1 || !strings.HasPrefix(out[0], "added bafkrei") || strings.Fields(out[0])[1] != strings.Fields(out[0])[2] {
		t.Errorf("add - printed %q", out)
	}

	tree := makeTree(t)
	msg := fails(t, repo, "", "add", tree)
	if !strings.Contains(msg, "-r") {
		t.Errorf("add of a directory without -r: %q", msg)
	}
	out = lines(ok(t, repo, "", "add", "-r", tree))
	var names []string
	for _, l := range out {
		names = append(names, strings.Fields(l)[2])
	}
	wantNames := []string{"tree/a.txt", "tree/empty", "tree/link", "tree/sub/b.txt", "tree/sub/run.sh", "tree/sub", "tree"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("add -r printed names %q, want %q", names, wantNames)
	}
	dir := strings.Fields(out[len(out)-1])[1]
	if q := lines(ok(t, repo, "", "add", "-r", "-q", tree)); len(q) != len(out) || q[len(q)-1] != dir {
		t.Errorf("add -r -q printed %q", q)
	}
	if got := ok(t, repo, "", "cat", dir+"/sub/b.txt"); got != "bravo\n" {
		t.Errorf("cat of a path: %q", got)
	}
	if got := ok(t, repo, "", "cat", "/ipfs/"+dir+"/a.txt"); got != "alpha\n" {
		t.Errorf("cat of an /ipfs/ path: %q", got)
	}
	for _, tc := range []struct{ arg, want string }{
		{dir, "is a directory"},
		{dir + "/link", "symlink"},
		{dir + "/nope", "no such file"},
		{"nonsense", "invalid CID"},
		{absentCID(t, "nobody has it").String(), "start 'bsfs daemon'"},
	} {
		if msg := fails(t, repo, "", "cat", tc.arg); !strings.Contains(msg, tc.want) {
			t.Errorf("cat %s: %q, want it to say %q", tc.arg, msg, tc.want)
		}
	}

	// get writes the tree, the file, and refuses to overwrite.
	work := t.TempDir()
	ok(t, repo, "", "get", dir, "-o", filepath.Join(work, "out"))
	checkTree(t, filepath.Join(work, "out"))
	fails(t, repo, "", "get", dir, "-o", filepath.Join(work, "out"))
	ok(t, repo, "", "get", c, "-o", filepath.Join(work, "file"))
	if got, err := os.ReadFile(filepath.Join(work, "file")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("get of the file: %d bytes, %v", len(got), err)
	}

	// Every root add made is recorded once.
	roots := rootsOf(t, repo)
	if len(roots) != 3 || roots[0].String() != c || roots[2].String() != dir {
		t.Errorf("roots %v, want %s, the stdin file and %s", roots, c, dir)
	}
}

// get's default output name is the last name of the path, else the CID.
func TestGetDefaultName(t *testing.T) {
	repo := t.TempDir()
	out := lines(ok(t, repo, "", "add", "-r", "-q", makeTree(t)))
	dir := out[len(out)-1]
	work := t.TempDir()
	cmd := exec.Command(bsfsBin, "get", dir+"/sub")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("get: %v: %s", err, out)
	}
	cmd = exec.Command(bsfsBin, "get", dir)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("get: %v: %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(work, "sub", "b.txt")); err != nil || string(got) != "bravo\n" {
		t.Errorf("sub/b.txt: %q, %v", got, err)
	}
	checkTree(t, filepath.Join(work, dir))
}

func TestAddCatGetHelp(t *testing.T) {
	repo := t.TempDir()
	for _, c := range []string{"add", "cat", "get"} {
		if out := ok(t, repo, "", c, "--help"); !strings.Contains(out, "Usage:") || !strings.Contains(out, "bsfs "+c) {
			t.Errorf("%s --help printed %q", c, out)
		}
		fails(t, repo, "", c)
	}
}

// add through one daemon, cat and get through another that fetches the
// blocks over Bitswap.
func TestAddCatBetweenDaemons(t *testing.T) {
	repoA, repoB := t.TempDir(), t.TempDir()
	a := startDaemon(t, repoA)
	b := startDaemon(t, repoB)
	path, data := randomFile(t, 20<<20+3)
	c := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path))
	dir := strings.TrimSpace(ok(t, repoA, "", "add", "-r", "-Q", makeTree(t)))
	ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t))

	if got := ok(t, repoB, "", "cat", c); got != string(data) {
		t.Errorf("cat on B: %d bytes, want the %d added on A", len(got), len(data))
	}
	out := filepath.Join(t.TempDir(), "tree")
	ok(t, repoB, "", "get", dir, "-o", out)
	checkTree(t, out)

	a.stopClean(t)
	b.stopClean(t)
	// A recorded its roots; B fetched, so it can cat offline.
	if roots := rootsOf(t, repoA); len(roots) != 2 || roots[0].String() != c || roots[1].String() != dir {
		t.Errorf("roots of A: %v, want %s and %s", roots, c, dir)
	}
	if got := ok(t, repoB, "", "cat", c); got != string(data) {
		t.Errorf("cat on B offline: %d bytes", len(got))
	}
	if roots := rootsOf(t, repoB); len(roots) != 0 {
		t.Errorf("roots of B, which added nothing: %v", roots)
	}
}

// Kubo cats what bsfs added, and bsfs cats what Kubo added.
func TestAddCatKubo(t *testing.T) {
	kubo := kubotest.Start(t)
	repo := t.TempDir()
	d := startDaemon(t, repo)
	path, data := randomFile(t, 5<<20+1)
	c, err := cid.Decode(strings.TrimSpace(ok(t, repo, "", "add", "-Q", path)))
	if err != nil {
		t.Fatal(err)
	}
	if err := kubo.SwarmConnect(t.Context(), mustMultiaddr(t, d.tcpAddr(t))); err != nil {
		t.Fatal(err)
	}
	got, err := kubo.Cat(t.Context(), c)
	if err != nil {
		t.Fatalf("Kubo cat of what bsfs added: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Kubo cat: %d bytes, want the %d added", len(got), len(data))
	}

	tree := makeTree(t)
	out, err := kubo.Run(t.Context(), "add", "-r", "-Q", "--cid-version=1", tree)
	if err != nil {
		t.Fatal(err)
	}
	kdir := strings.TrimSpace(string(out))
	if got := ok(t, repo, "", "cat", kdir+"/sub/b.txt"); got != "bravo\n" {
		t.Errorf("cat of a file Kubo added: %q", got)
	}
	dst := filepath.Join(t.TempDir(), "fromkubo")
	ok(t, repo, "", "get", kdir, "-o", dst)
	checkTree(t, dst)
	// The same tree added by bsfs has Kubo's CID.
	if mine := strings.TrimSpace(ok(t, repo, "", "add", "-r", "-Q", tree)); mine != kdir {
		t.Errorf("bsfs add -r: %s, Kubo: %s", mine, kdir)
	}
	d.stopClean(t)
}

// Ctrl-C on cat of a file nobody has, or of one whose third leaf nobody
// has (wanted by the daemon for the command's window of leaves), returns
// at once and the daemon cancels the want.
func TestCatInterrupted(t *testing.T) {
	repo := t.TempDir()
	startDaemon(t, repo)
	absent := absentCID(t, "a file nobody has")
	path, _ := randomFile(t, 1<<20+5)
	partial := strings.TrimSpace(ok(t, repo, "", "add", "-Q", path))
	leaf := lines(ok(t, repo, "", "refs", partial))[2]
	ok(t, repo, "", "block", "rm", leaf)
	for _, tc := range []struct{ cat, wanted string }{
		{absent.String(), absent.String()},
		{partial, leaf},
	} {
		catInterrupted(t, repo, tc.cat, tc.wanted)
	}
}

// catInterrupted runs cat of c, waits for the daemon to want wanted, and
// interrupts it.
func catInterrupted(t *testing.T, repo, c, wanted string) {
	t.Helper()
	cmd := exec.Command(bsfsBin, "cat", c)
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repo)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	waitWantlist(t, repo, []string{wanted})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if exitErr, isExit := errors.AsType[*exec.ExitError](err); !isExit || exitErr.ExitCode() == 0 {
			t.Errorf("cat %s after SIGINT: %v, want a non-zero exit", c, err)
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("cat %s after SIGINT printed %q", c, stderr.String())
		}
	case <-time.After(stopTimeout):
		t.Fatalf("cat %s still running %s after SIGINT", c, stopTimeout)
	}
	waitWantlist(t, repo, nil)
}

func mustMultiaddr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
