package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bsfs/bsfs/internal/kubotest"
)

// emptyRaw is what `ipfs add --cid-version=1` makes of an empty file.
const emptyRaw = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

// okWithin runs the binary, failing the test unless it exits 0 within
// limit; it returns stdout.
func okWithin(t *testing.T, limit time.Duration, repo string, args ...string) string {
	t.Helper()
	res := bsfsWithin(t, limit, repo, "", args...)
	if res.code != 0 {
		t.Fatalf("bsfs %s: exit %d, stderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// TestKuboEmptyFiles: a daemon connected to Kubo, speaking one Bitswap
// version, has the empty block at once without sending Kubo anything, and
// cats and gets a Kubo-added tree holding empty files and an empty
// directory, each command bounded by a few seconds.
func TestKuboEmptyFiles(t *testing.T) {
	kubo := kubotest.Start(t)
	src := filepath.Join(t.TempDir(), "tree")
	for name, data := range map[string]string{"empty.txt": "", "pkg/__init__.py": "", "pkg/mod.py": "x = 1\n", "keep/.gitkeep": ""} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "nested", "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := kubo.Run(t.Context(), "add", "-r", "-Q", "--hidden", "--cid-version=1", src)
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(out))
	var kuboTCP string
	for _, a := range kubo.Addrs() {
		if strings.Contains(a.String(), "/tcp/") {
			kuboTCP = a.String()
		}
	}
	for _, proto := range []string{"/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0"} {
		t.Run(proto, func(t *testing.T) {
			repo := t.TempDir()
			d := startDaemon(t, repo, "--listen", "/ip4/127.0.0.1/tcp/0", "--bitswap-protocols", proto)
			ok(t, repo, "", "swarm", "connect", kuboTCP)

			if got := okWithin(t, 10*time.Second, repo, "block", "get", "--timeout", "5s", emptyRaw); got != "" {
				t.Fatalf("block get of the empty block printed %q", got)
			}
			if got := okWithin(t, 10*time.Second, repo, "block", "stat", emptyRaw); !strings.Contains(got, "Size: 0\n") {
				t.Errorf("block stat of the empty block printed %q", got)
			}
			if s := statOf(t, repo); s.MessagesSent != 0 || s.Wantlist != 0 {
				t.Fatalf("after block get of the empty block: %d messages sent, %d wanted; want none", s.MessagesSent, s.Wantlist)
			}

			if got := okWithin(t, 15*time.Second, repo, "cat", root+"/pkg/__init__.py"); got != "" {
				t.Errorf("cat of an empty file printed %q", got)
			}
			dst := filepath.Join(t.TempDir(), "got")
			okWithin(t, 20*time.Second, repo, "get", root, "-o", dst)
			n := 0
			err := filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				n++
				rel, _ := filepath.Rel(src, path)
				got, err := os.Lstat(filepath.Join(dst, rel))
				if err != nil || got.IsDir() != de.IsDir() {
					t.Fatalf("get wrote %s as %v (%v), want dir %v", rel, got, err, de.IsDir())
				}
				if de.IsDir() {
					return nil
				}
				want, _ := os.ReadFile(path)
				if b, err := os.ReadFile(filepath.Join(dst, rel)); err != nil || !bytes.Equal(b, want) {
					t.Fatalf("get wrote %s: %q, %v; want %q", rel, b, err, want)
				}
				return nil
			})
			if err != nil || n != 9 {
				t.Fatalf("compared %d paths (%v), want the tree's 9", n, err)
			}
			d.stopClean(t)
		})
	}
}
