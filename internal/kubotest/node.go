package kubotest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/bsfs/bsfs/internal/poll"
)

const (
	// startTimeout bounds init, configuration and the daemon's start.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a SIGTERM may take before SIGKILL.
	stopTimeout = 15 * time.Second
	// logTail bounds how much of the daemon's log a failed test prints.
	logTail = 64 << 10
)

// Node is a running Kubo daemon with its own repository. Its methods are
// safe for concurrent use.
type Node struct {
	bin     string
	path    string // IPFS_PATH
	logPath string
	api     string // base URL of the RPC API, "http://127.0.0.1:port"
	id      peer.ID
	addrs   []multiaddr.Multiaddr
	gateway string // base URL of the HTTP gateway, if served
	client  *http.Client
}

// Start runs a fresh Kubo daemon for the test and stops it when the test
// ends. The repository is made by `ipfs init --profile=test` in a
// temporary directory and then restricted further (see the package doc).
// Start fails the test if the daemon does not answer within 60 seconds;
// the daemon's log is printed if the test fails.
func Start(t testing.TB) *Node {
	t.Helper()
	return StartWith(t, Options{})
}

// Options configures a daemon started by StartWith. The zero value is
// Start's daemon.
type Options struct {
	// Routing is Kubo's Routing.Type. Empty means "none", no routing at
	// all. A DHT type ("dht", "dhtserver", "dhtclient") runs Kubo's dual
	// DHT with no bootstrap peers (connect the daemon to its network with
	// SwarmConnect), loopback addresses kept on the LAN DHT, providing
	// turned on, and `ipfs add` announcing its root before it returns.
	Routing string
	// TCPOnly listens on TCP alone, without QUIC.
	TCPOnly bool
	// Gateway serves Kubo's HTTP gateway on 127.0.0.1 at a free port
	// (see GatewayURL), serving only what the node has.
	Gateway bool
	// Bootstrap are the peers the daemon connects to at start and keeps
	// connecting to while it has few peers (Kubo's Bootstrap list), each
	// a /ip4/127.0.0.1/.../p2p/<id> address: Configure refuses any other.
	Bootstrap []multiaddr.Multiaddr
	// ProvideStrategy is Kubo's Provide.Strategy ("roots" announces only
	// what is pinned directly, such as what `ipfs add` returns); empty
	// leaves Kubo's default.
	ProvideStrategy string
}

// StartDHTNetwork starts n Kubo daemons running the DHT as servers
// (Routing.Type dhtserver) and bootstrapped to the first one, the network
// of the IPFS DHT in miniature: each node finds the others through the
// first. It returns them in start order.
func StartDHTNetwork(t testing.TB, n int) []*Node {
	t.Helper()
	first := StartWith(t, Options{Routing: "dhtserver"})
	nodes := []*Node{first}
	for range n - 1 {
		nodes = append(nodes, StartWith(t, Options{Routing: "dhtserver", Bootstrap: first.Addrs()}))
	}
	return nodes
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Node {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	n := &Node{
		bin:     bin,
		path:    filepath.Join(dir, "ipfs"),
		logPath: filepath.Join(dir, "daemon.log"),
		client:  &http.Client{Transport: &http.Transport{}},
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()

	if out, err := n.Run(ctx, "init", "--profile=test", "--empty-repo"); err != nil {
		t.Fatalf("kubotest: ipfs init: %v\n%s", err, out)
	}
	if err := Configure(n.path, opts); err != nil {
		t.Fatalf("kubotest: configure %s: %v", n.path, err)
	}

	logf, err := os.Create(n.logPath)
	if err != nil {
		t.Fatalf("kubotest: %v", err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(n.bin, "daemon")
	cmd.Env = n.env()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("kubotest: start ipfs daemon: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		n.client.CloseIdleConnections()
		early := false
		select {
		case <-exited:
			early = true
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			t.Errorf("kubotest: ipfs daemon ignored SIGTERM for %v; killing it", stopTimeout)
			_ = cmd.Process.Kill()
			<-exited
		}
		if early {
			t.Errorf("kubotest: ipfs daemon exited before the test ended: %v", waitErr)
		}
		if t.Failed() {
			t.Logf("kubotest: log of the ipfs daemon for %s:\n%s", n.path, n.logTail())
		}
	})

	if err := n.waitReady(ctx, exited); err != nil {
		t.Fatalf("kubotest: ipfs daemon did not start: %v", err)
	}
	if opts.Gateway {
		n.readGateway(t)
	}
	return n
}

// readGateway records the gateway's base URL. The daemon writes
// $IPFS_PATH/gateway once the gateway listens, which may be after it
// answers the API.
func (n *Node) readGateway(t testing.TB) {
	t.Helper()
	poll.UntilNil(t, startTimeout, func() error {
		raw, err := os.ReadFile(filepath.Join(n.path, "gateway"))
		if err != nil {
			return fmt.Errorf("kubotest: gateway address: %w", err)
		}
		n.gateway = strings.TrimSuffix(strings.TrimSpace(string(raw)), "/")
		return nil
	})
}

// waitReady polls until the daemon has written its API address and
// answers /api/v0/id, then records its identity and listen addresses.
func (n *Node) waitReady(ctx context.Context, exited <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-exited:
			return errors.New("the daemon exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-tick.C:
		}
		if n.api == "" {
			api, err := n.readAPIFile()
			if err != nil {
				last = err
				continue
			}
			n.api = api
		}
		var id struct{ ID string }
		if err := n.callJSON(ctx, "id", nil, nil, &id); err != nil {
			last = err
			continue
		}
		pid, err := peer.Decode(id.ID)
		if err != nil {
			return fmt.Errorf("peer ID %q: %w", id.ID, err)
		}
		n.id = pid
		addrs, err := n.listenAddrs(ctx)
		if err != nil {
			return err
		}
		if len(addrs) == 0 {
			return errors.New("the daemon listens on no 127.0.0.1 swarm address")
		}
		n.addrs = addrs
		return nil
	}
}

// readAPIFile returns the RPC API's base URL from $IPFS_PATH/api.
func (n *Node) readAPIFile() (string, error) {
	raw, err := os.ReadFile(filepath.Join(n.path, "api"))
	if err != nil {
		return "", err
	}
	ma, err := multiaddr.NewMultiaddr(strings.TrimSpace(string(raw)))
	if err != nil {
		return "", fmt.Errorf("api file: %w", err)
	}
	addr, err := manet.ToNetAddr(ma)
	if err != nil {
		return "", fmt.Errorf("api file: %w", err)
	}
	return "http://" + addr.String(), nil
}

// listenAddrs returns the swarm listen addresses on 127.0.0.1, each with
// /p2p/<id> appended.
func (n *Node) listenAddrs(ctx context.Context) ([]multiaddr.Multiaddr, error) {
	var res struct{ Strings []string }
	if err := n.callJSON(ctx, "swarm/addrs/listen", nil, nil, &res); err != nil {
		return nil, err
	}
	suffix, err := multiaddr.NewMultiaddr("/p2p/" + n.id.String())
	if err != nil {
		return nil, err
	}
	var addrs []multiaddr.Multiaddr
	for _, s := range res.Strings {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", s, err)
		}
		if v, err := a.ValueForProtocol(multiaddr.P_IP4); err != nil || v != "127.0.0.1" {
			continue
		}
		addrs = append(addrs, a.Encapsulate(suffix))
	}
	return addrs, nil
}

// logTail returns the end of the daemon's log.
func (n *Node) logTail() string {
	raw, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	if len(raw) > logTail {
		raw = append([]byte("[...]\n"), raw[len(raw)-logTail:]...)
	}
	return string(raw)
}

// env is the environment of every ipfs process run for the node.
func (n *Node) env() []string {
	return append(os.Environ(), "IPFS_PATH="+n.path, "IPFS_TELEMETRY=off")
}

// GatewayURL returns the base URL of the HTTP gateway,
// "http://127.0.0.1:port"; "" unless started with Options.Gateway.
func (n *Node) GatewayURL() string { return n.gateway }

// GatewayAddr returns the HTTP gateway's address as a provider record
// gives it, /ip4/127.0.0.1/tcp/port/http; nil unless started with
// Options.Gateway.
func (n *Node) GatewayAddr() multiaddr.Multiaddr {
	if n.gateway == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(n.gateway, "http://"))
	if err != nil {
		return nil
	}
	a, err := multiaddr.NewMultiaddr("/ip4/" + host + "/tcp/" + port + "/http")
	if err != nil {
		return nil
	}
	return a
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.id }

// Addrs returns the node's swarm listen addresses on 127.0.0.1 (TCP and
// QUIC), each ending in /p2p/<id>.
func (n *Node) Addrs() []multiaddr.Multiaddr {
	return append([]multiaddr.Multiaddr(nil), n.addrs...)
}

// Path returns the node's repository directory (its IPFS_PATH); blocks
// are under Path()/blocks in Kubo's flatfs layout.
func (n *Node) Path() string { return n.path }

// Run runs the ipfs command line with the node's IPFS_PATH and returns its
// standard output. While the daemon runs, the command goes through its
// API. On failure the error includes the standard error output.
func (n *Node) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.bin, args...)
	cmd.Env = n.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// errorBody reads a non-2xx RPC answer, which Kubo sends as JSON
// {"Message": ..., "Code": ..., "Type": "error"}.
func errorBody(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct{ Message string }
	if json.Unmarshal(raw, &e) == nil && e.Message != "" {
		return &RPCError{Status: resp.StatusCode, Message: e.Message}
	}
	return &RPCError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
}
