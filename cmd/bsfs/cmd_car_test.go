package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/internal/kubotest"
)

// CAR files both ways with Kubo: Kubo imports our export and reads the
// same file; we import Kubo's export, write the same CAR back, and serve
// its blocks to another Kubo.
func TestCARRoundTripKubo(t *testing.T) {
	ctx := t.Context()
	kubo := kubotest.Start(t)
	repo := t.TempDir()
	work := t.TempDir()

	exportToKubo(t, ctx, kubo, repo, work)

	// Kubo's to ours: an import into a fresh repository pins the root, and
	// our export of it is Kubo's byte for byte.
	kdata := []byte(strings.Repeat("kubo's own file\n", 40000))
	kc, err := kubo.Add(ctx, kdata, 0, false) // CIDv0, dag-pb leaves
	if err != nil {
		t.Fatal(err)
	}
	kcar, err := kubo.Run(ctx, "dag", "export", kc.String())
	if err != nil {
		t.Fatalf("ipfs dag export: %v", err)
	}
	carPath := filepath.Join(work, "kubo.car")
	if err := os.WriteFile(carPath, kcar, 0o644); err != nil {
		t.Fatal(err)
	}
	mine := t.TempDir()
	got := ok(t, mine, "", "import", carPath)
	if !strings.HasSuffix(got, "pinned root "+kc.String()+"\n") {
		t.Errorf("import printed %q", got)
	}
	if got := ok(t, mine, "", "pin", "ls"); got != kc.String()+" recursive\n" {
		t.Errorf("pin ls after import: %q", got)
	}
	if again := ok(t, mine, "", "export", kc.String()); again != string(kcar) {
		t.Errorf("our export of Kubo's DAG is %d bytes, Kubo's %d, and they differ", len(again), len(kcar))
	}
	if got := ok(t, mine, string(kcar), "import", "-"); !strings.Contains(got, "pinned root") {
		t.Errorf("import from stdin printed %q", got)
	}

	// Served from the imported blocks to a Kubo that never saw them.
	d := startDaemon(t, mine)
	other := kubotest.Start(t)
	if err := other.SwarmConnect(ctx, mustMultiaddr(t, d.tcpAddr(t))); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Cat(ctx, kc); err != nil || !bytes.Equal(got, kdata) {
		t.Fatalf("another Kubo's cat through our daemon: %d bytes, %v", len(got), err)
	}
	d.stopClean(t)

	// A truncated CAR fails the import and pins nothing.
	broken := t.TempDir()
	fails(t, broken, string(kcar[:len(kcar)/2]), "import", "-")
	if got := ok(t, broken, "", "pin", "ls"); got != "" {
		t.Errorf("pin ls after a failed import: %q", got)
	}
	fails(t, broken, "not a car", "import", "-")
	if msg := fails(t, broken, "", "export", kc.String()); !strings.Contains(msg, "not found") {
		t.Errorf("export of an absent DAG: %q", msg)
	}
}

// exportToKubo adds a file of several levels and a tree to repo, and
// checks that kubo imports our export of each and reads the same file.
func exportToKubo(t *testing.T, ctx context.Context, kubo *kubotest.Node, repo, work string) {
	t.Helper()
	path, data := randomFile(t, 3<<20+5)
	file := strings.TrimSpace(ok(t, repo, "", "add", "-Q", path))
	out := lines(ok(t, repo, "", "add", "-r", "-q", makeTree(t)))
	dir := out[len(out)-1]
	for _, root := range []string{file, dir} {
		carPath := filepath.Join(work, root+".car")
		if err := os.WriteFile(carPath, []byte(ok(t, repo, "", "export", root)), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := kubo.Run(ctx, "dag", "import", carPath)
		if err != nil {
			t.Fatalf("ipfs dag import of our export: %v: %s", err, got)
		}
		if !strings.Contains(string(got), root) {
			t.Errorf("ipfs dag import printed %q, want the root %s", got, root)
		}
	}
	c, _ := cid.Decode(file)
	if got, err := kubo.Cat(ctx, c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Kubo cat of the imported file: %d bytes, %v", len(got), err)
	}
	if got, err := kubo.Run(ctx, "cat", dir+"/sub/b.txt"); err != nil || string(got) != "bravo\n" {
		t.Errorf("Kubo cat of the imported tree: %q, %v", got, err)
	}
}
