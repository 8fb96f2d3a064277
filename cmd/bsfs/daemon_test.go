package main

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/node"
	"github.com/bsfs/bsfs/internal/poll"
)

// waitTimeout bounds the tests' waits for a daemon's state.
const waitTimeout = 10 * time.Second

func TestTwoDaemonsExchangeBlock(t *testing.T) {
	repoA, repoB := t.TempDir(), t.TempDir()
	a := startDaemon(t, repoA)
	b := startDaemon(t, repoB, "--listen", "/ip4/127.0.0.1/tcp/0", "--bitswap-protocols", "/ipfs/bitswap/1.0.0")
	if a.id == b.id {
		t.Fatalf("both daemons have peer ID %s", a.id)
	}

	// id goes through the daemon and prints its real addresses.
	idA := lines(ok(t, repoA, "", "id"))
	if len(idA) < 2 || idA[0] != a.id || !slices.Equal(idA[1:], a.addrs) {
		t.Errorf("id on A printed %q, want %s then %q", idA, a.id, a.addrs)
	}

	data := "a block only A has, " + time.Now().String()
	c := strings.TrimSpace(ok(t, repoA, data, "block", "put"))

	if got := ok(t, repoB, "", "swarm", "connect", a.tcpAddr(t)); got != "connect "+a.id+" success\n" {
		t.Errorf("swarm connect printed %q", got)
	}
	peers := lines(ok(t, repoB, "", "swarm", "peers"))
	if len(peers) != 1 || !strings.HasSuffix(peers[0], "/p2p/"+a.id) || !strings.HasPrefix(peers[0], "/ip4/127.0.0.1/tcp/") {
		t.Errorf("swarm peers on B printed %q, want A's address", peers)
	}

	if got := ok(t, repoB, "", "block", "get", "--timeout", "30s", c); got != data {
		t.Errorf("block get on B printed %q, want %q", got, data)
	}
	if got := ok(t, repoB, "", "block", "stat", c); !strings.Contains(got, "Key: "+c+"\n") {
		t.Errorf("block stat on B printed %q", got)
	}

	a.stopClean(t)
	b.stopClean(t)

	// B stored what it fetched; without a daemon it reads it offline.
	if got := ok(t, repoB, "", "block", "get", c); got != data {
		t.Errorf("block get on B offline printed %q, want %q", got, data)
	}
}

func TestDaemonSIGTERM(t *testing.T) {
	repo := t.TempDir()
	d := startDaemon(t, repo)
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code %d after SIGTERM; stderr: %s", code, d.stderr)
	}
	// The repository is unlocked again.
	ok(t, repo, "hello", "block", "put")
}

func TestSecondDaemonOnRepositoryFails(t *testing.T) {
	repo := t.TempDir()
	d := startDaemon(t, repo)
	// A daemon is not waited for as a command would be.
	start := time.Now()
	msg := fails(t, repo, "", "daemon", "--listen", "/ip4/127.0.0.1/tcp/0")
	if !strings.Contains(msg, "lock") || !strings.Contains(msg, "a daemon already runs") {
		t.Errorf("second daemon: %q, want a lock error naming the daemon", msg)
	}
	if elapsed := time.Since(start); elapsed >= lockWait {
		t.Errorf("second daemon gave up after %s, as late as for a command's hold (%s)", elapsed, lockWait)
	}
	// The first one is unharmed.
	if got := lines(ok(t, repo, "", "id")); len(got) == 0 || got[0] != d.id {
		t.Errorf("id after the failed second daemon: %q", got)
	}
	d.stopClean(t)
}

// A daemon that holds the repository but does not answer is reported, not
// waited for.
func TestUnresponsiveDaemon(t *testing.T) {
	repo := t.TempDir()
	d := startDaemon(t, repo)
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cmd.Process.Signal(syscall.SIGCONT) })
	start := time.Now()
	msg := fails(t, repo, "", "block", "stat", helloCID)
	if !strings.Contains(msg, "locked") || !strings.Contains(msg, "no daemon answers") {
		t.Errorf("block stat with a stopped daemon: %q", msg)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("took %s to give up", elapsed)
	}
	fails(t, repo, "", "swarm", "peers")
	if err := d.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	d.stopClean(t)
}

func TestSwarmConnectUnreachable(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := startDaemon(t, t.TempDir())
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	start := time.Now()
	msg := fails(t, b.repo, "", "swarm", "connect", "/ip4/127.0.0.1/tcp/"+strconv.Itoa(port)+"/p2p/"+a.id)
	if !strings.Contains(msg, a.id) {
		t.Errorf("unreachable connect: %q does not name the peer", msg)
	}
	if elapsed := time.Since(start); elapsed > node.ConnectTimeout+5*time.Second {
		t.Errorf("unreachable connect took %s", elapsed)
	}
	if peers := ok(t, b.repo, "", "swarm", "peers"); peers != "" {
		t.Errorf("peers after a failed connect: %q", peers)
	}
	// Connecting to oneself is refused.
	fails(t, a.repo, "", "swarm", "connect", a.tcpAddr(t))
}

// Interrupting `block get` through the daemon cancels the want, and
// --timeout bounds it.
func TestBlockGetCancelsWant(t *testing.T) {
	repo := t.TempDir()
	startDaemon(t, repo)
	absent := absentCID(t, "nobody has this block")

	start := time.Now()
	msg := fails(t, repo, "", "block", "get", "--timeout", "500ms", absent.String())
	if !strings.Contains(msg, "not found within 500ms") {
		t.Errorf("block get with a timeout: %q", msg)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("block get --timeout 500ms took %s", elapsed)
	}
	waitWantlist(t, repo, nil)

	get := exec.Command(bsfsBin, "block", "get", absent.String())
	get.Env = append(get.Environ(), "BSFS_PATH="+repo)
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { get.Process.Kill(); get.Wait() })
	waitWantlist(t, repo, []string{absent.String()})
	if err := get.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitWantlist(t, repo, nil)
}

// waitWantlist waits until the daemon on repo wants exactly want.
func waitWantlist(t *testing.T, repo string, want []string) {
	t.Helper()
	poll.UntilNil(t, waitTimeout, func() error {
		if got := lines(ok(t, repo, "", "wantlist")); !slices.Equal(got, want) {
			return fmt.Errorf("wantlist %q, want %q", got, want)
		}
		return nil
	})
}

func TestKuboInterop(t *testing.T) {
	kubo := kubotest.Start(t)
	repo := t.TempDir()
	d := startDaemon(t, repo)

	fromKubo := []byte("a block Kubo has, " + time.Now().String())
	kc, err := kubo.BlockPut(t.Context(), fromKubo, "raw", "sha2-256")
	if err != nil {
		t.Fatal(err)
	}
	var kuboTCP string
	for _, a := range kubo.Addrs() {
		if strings.Contains(a.String(), "/tcp/") {
			kuboTCP = a.String()
		}
	}
	ok(t, repo, "", "swarm", "connect", kuboTCP)
	if got := ok(t, repo, "", "block", "get", "--timeout", "30s", kc.String()); got != string(fromKubo) {
		t.Errorf("block get from Kubo printed %q, want %q", got, fromKubo)
	}

	fromBsfs := "a block bsfs has, " + time.Now().String()
	bc, err := cid.Decode(strings.TrimSpace(ok(t, repo, fromBsfs, "block", "put")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := kubo.BlockGet(t.Context(), bc)
	if err != nil {
		t.Fatalf("Kubo fetching %s from bsfs: %v", bc, err)
	}
	if string(got) != fromBsfs {
		t.Errorf("Kubo got %q, want %q", got, fromBsfs)
	}
	d.stopClean(t)
}

// absentCID is the raw CIDv1 of data, which no test stores.
func absentCID(t *testing.T, data string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(data), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}
