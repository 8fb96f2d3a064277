package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	repopkg "github.com/bsfs/bsfs/repo"

	"github.com/libp2p/go-libp2p/core/peer"
)

// helloCID is what Kubo's `ipfs block put` prints for the five bytes "hello".
const helloCID = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"

func TestInitTwiceFails(t *testing.T) {
	repo := t.TempDir()
	out := ok(t, repo, "", "init")
	var id string
	for _, l := range lines(out) {
		if s, found := strings.CutPrefix(l, "peer identity: "); found {
			id = s
		}
	}
	if _, err := peer.Decode(id); err != nil {
		t.Fatalf("init printed %q: no valid peer identity line (%v)", out, err)
	}
	msg := fails(t, repo, "", "init")
	if !strings.Contains(msg, repo) {
		t.Errorf("second init error %q does not name the repository", msg)
	}

	idOut := lines(ok(t, repo, "", "id"))
	if len(idOut) == 0 || idOut[0] != id {
		t.Fatalf("id printed %q, want the peer ID %s first", idOut, id)
	}
	for _, a := range idOut[1:] {
		if !strings.HasSuffix(a, "/p2p/"+id) {
			t.Errorf("id address %q does not end in /p2p/%s", a, id)
		}
	}
}

func TestIDCreatesRepository(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "fresh")
	first := lines(ok(t, repo, "", "id"))
	if len(first) == 0 {
		t.Fatal("id printed nothing")
	}
	if _, err := peer.Decode(first[0]); err != nil {
		t.Fatalf("id's first line %q is not a peer ID: %v", first[0], err)
	}
	// The identity is kept: a second run prints the same.
	if second := lines(ok(t, repo, "", "id")); second[0] != first[0] {
		t.Errorf("peer ID changed between runs: %s then %s", first[0], second[0])
	}
	fails(t, repo, "", "init")
}

func TestHelp(t *testing.T) {
	repo := t.TempDir()
	for _, path := range []string{
		"", "init", "id", "daemon",
		"block", "block put", "block get", "block stat", "block rm",
		"swarm", "swarm connect", "swarm peers",
		"stat", "ledger", "wantlist", "version",
	} {
		args := append(strings.Fields(path), "--help")
		out := ok(t, repo, "", args...)
		if !strings.Contains(out, "Usage:") || !strings.Contains(out, "bsfs "+path) {
			t.Errorf("bsfs %s --help: no usage of %q:\n%s", path, "bsfs "+path, out)
		}
	}
	// --help creates nothing.
	if entries, err := os.ReadDir(repo); err != nil || len(entries) != 0 {
		t.Errorf("--help touched the repository: %v %v", entries, err)
	}
}

// version prints one line naming bsfs and the Go that built it, and opens
// no repository.
func TestVersion(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "none")
	out := lines(ok(t, repo, "", "version"))
	if len(out) != 1 || !strings.HasPrefix(out[0], "bsfs version ") || !strings.Contains(out[0], runtime.Version()) {
		t.Fatalf("version printed %q", out)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Errorf("version touched the repository: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	repo := t.TempDir()
	missing := filepath.Join(t.TempDir(), "no-such-file")
	for _, tc := range []struct {
		args []string
		want string // in the error line
	}{
		{[]string{"block", "get", "not-a-cid"}, "invalid CID"},
		{[]string{"block", "stat", "bafyXXX"}, "invalid CID"},
		{[]string{"block", "rm", "Qm"}, "invalid CID"},
		{[]string{"block", "get"}, "arg"},
		{[]string{"block", "put", missing}, "no-such-file"},
		{[]string{"block", "put", "--cid-codec", "nonsense"}, "--cid-codec"},
		{[]string{"block", "put", "--mhtype", "md5-ish"}, "--mhtype"},
		{[]string{"block", "put", "--cid-version", "0"}, "dag-pb"},
		{[]string{"block", "put", "--cid-version", "2"}, "--cid-version"},
		{[]string{"block", "get", helloCID}, "not found"},
		{[]string{"block", "stat", helloCID}, "not found"},
		{[]string{"block", "rm", helloCID}, "not found"},
		{[]string{"swarm", "connect", "/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{[]string{"swarm", "connect", "not-a-multiaddr"}, "multiaddr"},
		{[]string{"swarm", "peers"}, "bsfs daemon"},
		{[]string{"wantlist"}, "bsfs daemon"},
		{[]string{"stat"}, "bsfs daemon"},
		{[]string{"daemon", "--bitswap-protocols", "/ipfs/bitswap/9.9.9"}, "unknown Bitswap protocol"},
		{[]string{"no-such-command"}, "unknown command"},
		{[]string{"block", "put", "--no-such-flag"}, "unknown flag"},
		{[]string{"version", "extra"}, "unknown command"},
	} {
		msg := fails(t, repo, "", tc.args...)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("bsfs %s: error %q does not mention %q", strings.Join(tc.args, " "), msg, tc.want)
		}
	}
}

func TestBlockRoundTripOffline(t *testing.T) {
	repo := t.TempDir()
	if got := ok(t, repo, "hello", "block", "put"); got != helloCID+"\n" {
		t.Fatalf("block put of \"hello\" printed %q, want %s", got, helloCID)
	}
	if got := ok(t, repo, "", "block", "stat", helloCID); got != "Key: "+helloCID+"\nSize: 5\n" {
		t.Errorf("block stat printed %q", got)
	}
	if got := ok(t, repo, "", "block", "get", helloCID); got != "hello" {
		t.Errorf("block get printed %q, want hello", got)
	}
	if got := ok(t, repo, "", "block", "rm", helloCID); got != "removed "+helloCID+"\n" {
		t.Errorf("block rm printed %q", got)
	}
	fails(t, repo, "", "block", "get", helloCID)

	// The same bytes under Kubo's other CIDs, from a file and from "-".
	file := writeFile(t, []byte("hello"))
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--mhtype", "sha2-512"}, "bafkrgqe3ohjcjplc6n4f3fwunlj6upltggn7xqujbsvnvyw764srszz4u4rshq6ztos4chl4plgg4ffyyxnayrtdi5oc4xb2332g645433aeg"},
		{[]string{"--mhtype", "blake2b-256"}, "bafk2bzaceaze3tycpxkkgcutfrcb6ns2exugwfz556slrzmjjasti4nydnzm6"},
		{[]string{"--mhtype", "blake3"}, "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"},
		{[]string{"--cid-codec", "dag-pb"}, "bafybeibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"},
		{[]string{"--cid-codec", "dag-pb", "--cid-version", "0"}, "QmRN6wdp1S2A5EtjW9A3M1vKSBuQQGcgvuhoMUoEz4iiT5"},
		{[]string{"--cid-codec", "dag-cbor"}, "bafyreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"},
	} {
		args := append(append([]string{"block", "put"}, tc.flags...), file)
		if got := ok(t, repo, "", args...); got != tc.want+"\n" {
			t.Errorf("bsfs %s printed %q, want %s", strings.Join(args, " "), got, tc.want)
		}
		if got := ok(t, repo, "hello", append(args[:len(args)-1], "-")...); got != tc.want+"\n" {
			t.Errorf("block put %s - printed %q, want %s", strings.Join(tc.flags, " "), got, tc.want)
		}
		if got := ok(t, repo, "", "block", "get", tc.want); got != "hello" {
			t.Errorf("block get %s printed %q, want hello", tc.want, got)
		}
	}
}

func TestBlockPutSizeLimit(t *testing.T) {
	repo := t.TempDir()
	max := bytes.Repeat([]byte{'x'}, 2<<20)
	c := strings.TrimSpace(ok(t, repo, "", "block", "put", writeFile(t, max)))
	if got := ok(t, repo, "", "block", "stat", c); !strings.HasSuffix(got, "Size: 2097152\n") {
		t.Errorf("block stat of a 2 MiB block: %q", got)
	}
	msg := fails(t, repo, "", "block", "put", writeFile(t, append(max, 'x')))
	if !strings.Contains(msg, "too large") {
		t.Errorf("block put of 2 MiB + 1 byte: %q, want a too-large error", msg)
	}
}

// A socket left by a killed daemon is ignored: commands open the
// repository themselves.
func TestStaleSocketIgnored(t *testing.T) {
	repo := t.TempDir()
	ok(t, repo, "", "init")
	ln, err := net.Listen("unix", repopkg.APISocketPath(repo))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(repopkg.APISocketPath(repo)); err != nil {
		t.Fatalf("stale socket not left in place: %v", err)
	}
	if got := ok(t, repo, "hello", "block", "put"); got != helloCID+"\n" {
		t.Errorf("block put with a stale socket printed %q", got)
	}
	fails(t, repo, "", "swarm", "peers")

	// A daemon replaces the stale socket and removes it on exit.
	d := startDaemon(t, repo)
	if got := ok(t, repo, "", "block", "get", helloCID); got != "hello" {
		t.Errorf("block get through the daemon printed %q", got)
	}
	d.stopClean(t)
}
