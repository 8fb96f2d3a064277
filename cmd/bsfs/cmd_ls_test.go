package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/treetest"
)

// kuboTree writes a tree with a file of three blocks, two equal files of
// three equal blocks, nested directories, an empty one, a symlink, and a
// directory that Kubo shards as a HAMT (1200 names of 200 bytes).
func kuboTree(t *testing.T) string {
	t.Helper()
	big := make([]byte, 700000)
	rand.Read(big)
	zeros := strings.Repeat("\x00", 600000)
	dir := treetest.Tree{
		Files: map[string]string{
			"a.txt": "alpha\n", "big.bin": string(big), "nested/b.txt": "bravo\n",
			"nested/deeper/c.txt": "charlie\n", "dup/zero1": zeros, "dup/zero2": zeros,
		},
		Dirs:  []string{"empty"},
		Links: map[string]string{"link": "nested/b.txt"},
	}.Write(t)
	hamt := filepath.Join(dir, "hamt")
	if err := os.Mkdir(hamt, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 1200 {
		name := fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 195))
		if err := os.WriteFile(filepath.Join(hamt, name), fmt.Appendf(nil, "entry %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ls, refs and dag stat print what Kubo's commands print on the same DAG,
// added to both with the same parameters; a block missing offline is named.
func TestLsRefsDagStatLikeKubo(t *testing.T) {
	ctx := t.Context()
	kubo := kubotest.Start(t)
	tree := kuboTree(t)
	kout, err := kubo.Run(ctx, "add", "-r", "-Q", "--cid-version=1", tree)
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(kout))
	repo := t.TempDir()
	if got := strings.TrimSpace(ok(t, repo, "", "add", "-r", "-Q", tree)); got != root {
		t.Fatalf("bsfs add: %s, Kubo's: %s", got, root)
	}
	if ents := lines(ok(t, repo, "", "ls", root+"/hamt")); len(ents) != 1200 {
		t.Fatalf("ls of the HAMT: %d entries", len(ents))
	}
	var cmds [][]string
	for _, p := range []string{root, root + "/nested", root + "/nested/deeper", root + "/hamt", root + "/big.bin", root + "/a.txt", root + "/empty", root + "/dup"} {
		cmds = append(cmds, []string{"ls", p}, []string{"refs", "-r", p})
	}
	cmds = append(cmds,
		[]string{"ls", "-v", root}, []string{"ls", "--size=false", root + "/nested"},
		[]string{"ls", "-v", "--size=false", "--resolve-type=false", root},
		[]string{"ls", "-v", root + "/big.bin"}, []string{"ls", root, root + "/nested"},
		[]string{"refs", root}, []string{"refs", "-r", "--unique", root}, []string{"refs", "-r", "-u", root + "/dup", root + "/big.bin"},
		[]string{"refs", "-e", "-r", "--max-depth=2", root}, []string{"refs", "-r", "-u", "--max-depth=3", root}, []string{"refs", "-r", "--format=<linkname> <src> <dst>", root + "/nested"},
		[]string{"dag", "stat", "--progress=false", root}, []string{"dag", "stat", "--progress=false", root + "/dup", root + "/dup/zero1", root + "/big.bin"},
	)
	for _, args := range cmds {
		want, err := kubo.Run(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		res := bsfs(t, repo, "", args...)
		if res.code != 0 || res.stdout != string(want) || res.stderr != "" {
			t.Errorf("bsfs %s: exit %d, stderr %q, stdout:\n%s\nKubo's:\n%s", strings.Join(args, " "), res.code, res.stderr, res.stdout, want)
		}
	}
	// The directory, the files' one root, and their two distinct leaves.
	if got := ok(t, repo, "", "dag", "stat", root+"/dup"); !strings.Contains(got, "Unique Blocks: 4\n") {
		t.Errorf("dag stat of two equal files of three blocks, two of them equal:\n%s", got)
	}

	t.Run("offline, a missing block is named", func(t *testing.T) {
		leaf := lines(ok(t, repo, "", "refs", root+"/big.bin"))[1]
		ok(t, repo, "", "block", "rm", leaf)
		// ls fetches the file's root block alone: its leaves are raw.
		ok(t, repo, "", "ls", root+"/big.bin")
		if msg := fails(t, repo, "", "dag", "stat", root); !strings.Contains(msg, leaf) || !strings.Contains(msg, "no daemon runs") {
			t.Errorf("dag stat with %s missing: %s", leaf, msg)
		}
		// refs prints the links it reached before the missing block, as Kubo's does.
		res := bsfs(t, repo, "", "refs", "-r", root)
		if res.code == 0 || !strings.Contains(res.stderr, leaf) || !strings.Contains(res.stderr, "no daemon runs") {
			t.Errorf("refs -r with %s missing: exit %d, stderr %q", leaf, res.code, res.stderr)
		}
	})

	t.Run("with a daemon, missing blocks are fetched", func(t *testing.T) {
		fresh := t.TempDir()
		d := startDaemon(t, fresh)
		ok(t, fresh, "", "swarm", "connect", kuboTCP(t, kubo))
		want, err := kubo.Run(ctx, "dag", "stat", "--progress=false", root)
		if err != nil {
			t.Fatal(err)
		}
		if got := ok(t, fresh, "", "dag", "stat", root); got != string(want) {
			t.Errorf("dag stat fetching from Kubo:\n%s\nKubo's:\n%s", got, want)
		}
		d.stopClean(t)
		// Everything is now local.
		if got := ok(t, fresh, "", "dag", "stat", root); got != string(want) {
			t.Errorf("dag stat offline after fetching:\n%s", got)
		}
	})
}

// kuboTCP is kubo's TCP address with its peer ID.
func kuboTCP(t *testing.T, kubo *kubotest.Node) string {
	t.Helper()
	for _, a := range kubo.Addrs() {
		if strings.Contains(a.String(), "/tcp/") {
			return a.String() + "/p2p/" + kubo.ID().String()
		}
	}
	t.Fatalf("Kubo has no TCP address: %v", kubo.Addrs())
	return ""
}
