package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	repopkg "github.com/bsfs/bsfs/repo"
)

// requirePrivate fails the test before a node starts on repoPath unless it
// will stay on loopback: the test profile is in the environment, and the
// config, if the repository has one yet, passes privateConfig.
func requirePrivate(t *testing.T, repoPath string) {
	t.Helper()
	if got := os.Getenv(repopkg.EnvInitProfile); got != repopkg.ProfileTest {
		t.Fatalf("%s=%q in the tests' environment, want %q: a repository created now would get the public defaults", repopkg.EnvInitProfile, got, repopkg.ProfileTest)
	}
	if _, err := os.Stat(filepath.Join(repoPath, "config")); errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err := privateConfig(repoPath, nil); err != nil {
		t.Fatal(err)
	}
}

// privateConfig checks that the config of the repository at repoPath keeps
// its node on loopback (listen addresses and bootstrap peers on loopback
// IPs, no /dnsaddr or /dns names, delegated routers only at loopback IPs)
// and that so do the addresses a started node printed.
func privateConfig(repoPath string, printed []string) error {
	c, err := repopkg.ReadConfig(repoPath)
	if err != nil {
		return err
	}
	// The addresses printed are checked as listen addresses.
	c.Addresses.Swarm = append(c.Addresses.Swarm, printed...)
	if err := c.CheckPrivate(); err != nil {
		return fmt.Errorf("repository %s: %w", repoPath, err)
	}
	return nil
}

// inetSocket is one line of /proc/<pid>/net/{tcp,udp}{,6}.
type inetSocket struct {
	proto         string // "tcp", "udp6", ...
	local, remote netip.AddrPort
	inode         uint64
}

// String formats s for a message.
func (s inetSocket) String() string { return fmt.Sprintf("%s %s -> %s", s.proto, s.local, s.remote) }

// onLoopback reports whether s stays on loopback: bound to a loopback
// address, and unconnected or connected to one, and not to DNS's port.
func (s inetSocket) onLoopback() bool {
	if !s.local.Addr().Unmap().IsLoopback() {
		return false
	}
	r := s.remote.Addr().Unmap()
	if r.IsUnspecified() && s.remote.Port() == 0 {
		return true
	}
	return r.IsLoopback() && s.remote.Port() != 53
}

// parseProcNet parses a /proc/net/{tcp,udp}{,6} table.
func parseProcNet(proto, table string) ([]inetSocket, error) {
	var out []inetSocket
	sc := bufio.NewScanner(strings.NewReader(table))
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			return nil, fmt.Errorf("%s line %q: too few fields", proto, sc.Text())
		}
		local, err := parseProcAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s line %q: %w", proto, sc.Text(), err)
		}
		remote, err := parseProcAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s line %q: %w", proto, sc.Text(), err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %q: inode: %w", proto, sc.Text(), err)
		}
		out = append(out, inetSocket{proto: proto, local: local, remote: remote, inode: inode})
	}
	return out, sc.Err()
}

// parseProcAddr parses "0100007F:1F90": the address as the kernel holds it
// (32-bit words in host order, little-endian here) and the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// processSockets returns the inet sockets process pid has open; an exited
// process has none.
func processSockets(pid int) ([]inetSocket, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	fds, err := os.ReadDir(dir + "/fd")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inodes := make(map[uint64]bool)
	for _, fd := range fds {
		link, err := os.Readlink(dir + "/fd/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				inodes[n] = true
			}
		}
	}
	var out []inetSocket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		table, err := os.ReadFile(dir + "/net/" + proto)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		socks, err := parseProcNet(proto, string(table))
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			if inodes[s.inode] {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// socketWatch samples the inet sockets of processes until stopped.
type socketWatch struct {
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	offLoop   map[string]bool // sockets seen off loopback
	connected int             // samples of loopback sockets connected to a peer
	err       error
}

// watchSockets samples pid's sockets every few milliseconds until end.
func watchSockets(pid int) *socketWatch {
	w := &socketWatch{stop: make(chan struct{}), done: make(chan struct{}), offLoop: make(map[string]bool)}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			w.sample(pid)
			select {
			case <-w.stop:
				w.sample(pid)
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *socketWatch) sample(pid int) {
	socks, err := processSockets(pid)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = errors.Join(w.err, err)
		return
	}
	for _, s := range socks {
		switch {
		case !s.onLoopback():
			w.offLoop[s.String()] = true
		case s.remote.Port() != 0:
			w.connected++
		}
	}
}

// end stops the sampling and returns the sockets seen off loopback and
// how many samples saw a connection on loopback.
func (w *socketWatch) end() (offLoopback []string, connected int, err error) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.offLoop {
		offLoopback = append(offLoopback, s)
	}
	slices.Sort(offLoopback)
	return offLoopback, w.connected, w.err
}

func TestParseProcNet(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1003 2 0000000000000000 0
   3: 0100007F:9C40 35FFFF0A:0035 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1
`
	const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F92 0000000000000000FFFF00000100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000000000000:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 100 0 0 10 0
`
	want := map[uint64]string{
		1001: "127.0.0.1:8080 0.0.0.0:0 true",
		1002: "127.0.0.1:41668 127.0.0.1:8080 true",
		1003: "0.0.0.0:5353 0.0.0.0:0 false",
		1004: "127.0.0.1:40000 10.255.255.53:53 false",
		2001: "[::1]:8081 [::]:0 true",
		2002: "[::ffff:127.0.0.1]:8082 [::ffff:127.0.0.1]:40960 true",
		2003: "[::]:8083 [::]:0 false",
	}
	got := make(map[uint64]string)
	for proto, table := range map[string]string{"tcp": tcp, "tcp6": tcp6} {
		socks, err := parseProcNet(proto, table)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range socks {
			got[s.inode] = fmt.Sprintf("%s %s %t", s.local, s.remote, s.onLoopback())
		}
	}
	for inode, w := range want {
		if got[inode] != w {
			t.Errorf("socket %d: %q, want %q", inode, got[inode], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("parsed %d sockets, want %d", len(got), len(want))
	}
}

// Issue 14: nodes with the test profile stay on loopback. A hub, a holder
// and a seeker, each a daemon whose repository the test profile made,
// bootstrap from the hub; the seeker finds the holder through the DHT and
// fetches from it. Every inet socket each daemon has open, sampled all the
// while, is bound to loopback and connected only to loopback, and none
// reaches a DNS server.
func TestTestProfileStaysOnLoopback(t *testing.T) {
	start := func(repoPath string) (*daemon, *socketWatch) {
		t.Helper()
		d := launchDaemon(t, repoPath, "--metrics", "")
		w := watchSockets(d.cmd.Process.Pid)
		if err := d.waitReady(); err != nil {
			w.end()
			t.Fatal(err)
		}
		return d, w
	}
	hubRepo, holderRepo, seekerRepo := t.TempDir(), t.TempDir(), t.TempDir()
	hub, hubWatch := start(hubRepo)
	watches := map[string]*socketWatch{"hub": hubWatch}

	// The holder adds offline and announces its root once bootstrapped.
	ok(t, holderRepo, "", "init")
	ok(t, seekerRepo, "", "init")
	for _, r := range []string{holderRepo, seekerRepo} {
		setConfig(t, r, "Bootstrap", []string{hub.tcpAddr(t)})
	}
	path, data := randomFile(t, 300<<10)
	root := strings.TrimSpace(ok(t, holderRepo, "", "add", "-Q", path))
	holder, holderWatch := start(holderRepo)
	watches["holder"] = holderWatch
	seeker, seekerWatch := start(seekerRepo)
	watches["seeker"] = seekerWatch

	// The holder's record may not be on the hub yet: a session searches
	// for providers once per want, so ask again until it is found.
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		res, err := runBsfs(ctx, seekerRepo, "", "cat", root)
		cancel()
		if err == nil && res.code == 0 {
			if res.stdout != string(data) {
				t.Fatalf("cat on the seeker: %d bytes, want the %d the holder added", len(res.stdout), len(data))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seeker did not find the holder's %s through the DHT: %v %+v; seeker stderr: %s", root, err, res, seeker.stderr)
		}
	}
	seeker.stopClean(t)
	holder.stopClean(t)
	hub.stopClean(t)
	for name, w := range watches {
		off, connected, err := w.end()
		if err != nil {
			t.Errorf("%s: reading its sockets: %v", name, err)
		}
		if len(off) > 0 {
			t.Errorf("%s had sockets off loopback: %q", name, off)
		}
		// The watch saw the node's connections, so it was looking.
		if connected == 0 {
			t.Errorf("%s: no connected loopback socket seen in any sample", name)
		}
	}
}

// setConfig sets one top-level key of the repository's config file.
func setConfig(t *testing.T, repoPath, key string, value any) {
	t.Helper()
	p := filepath.Join(repoPath, "config")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	c[key] = value
	if data, err = json.MarshalIndent(c, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
