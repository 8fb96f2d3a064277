package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// impl names an implementation: Kubo or bsfs.
type impl string

const (
	kubo impl = "Kubo"
	bsfs impl = "bsfs"
)

// readyLine is what both daemons print once they serve.
const readyLine = "Daemon is ready"

// rawPrefix is the CID of a raw block hashed with sha2-256, CIDv1.
var rawPrefix = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}

// node is one repository of either implementation and, while it runs, its
// daemon.
type node struct {
	impl impl
	bin  string
	dir  string // IPFS_PATH or BSFS_PATH
	name string // for logs

	extra []string // bsfs: flags for the daemon and the mount

	d      *daemon
	addr   string       // TCP swarm address ending in /p2p/<id>
	api    string       // Kubo: RPC base URL
	client *http.Client // Kubo: TCP; bsfs: the API socket
}

func (n *node) env() []string {
	if n.impl == kubo {
		return append(os.Environ(), "IPFS_PATH="+n.dir, "IPFS_TELEMETRY=off")
	}
	return append(os.Environ(), "BSFS_PATH="+n.dir)
}

// cli runs the node's command line.
func (n *node) cli(ctx context.Context, args ...string) ([]byte, error) {
	return runCmd(ctx, n.env(), n.bin, args...)
}

// initRepo creates the node's repository. Kubo's test profile already
// writes blocks without fsync (flatfs "sync": false), as bsfs does; init
// checks that it still does.
func (n *node) initRepo(ctx context.Context) error {
	if n.impl == bsfs {
		_, err := n.cli(ctx, "init")
		return err
	}
	if _, err := n.cli(ctx, "init", "--profile=test", "--empty-repo"); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(n.dir, "config"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(raw), `"sync": false`) {
		return errors.New("kubo's test profile no longer turns flatfs sync off: the comparison would not be like with like")
	}
	// Configured like the test peers, but on TCP only, as the bsfs daemons.
	return kubotest.Configure(n.dir, kubotest.Options{TCPOnly: true})
}

// start runs the node's daemon. With mount set it also mounts the node's
// content there, in the same process: Kubo runs `ipfs daemon --mount` (/ipfs
// at mount/ipfs); bsfs runs `bsfs mount`, which then runs its own node and
// serves no API, so other nodes must dial it.
func (n *node) start(ctx context.Context, p *procs, mount string) error {
	var args []string
	ready := readyLine
	switch n.impl {
	case kubo:
		args = []string{"daemon"}
		if mount != "" {
			for _, sub := range []string{"ipfs", "ipns", "mfs"} {
				if err := os.MkdirAll(filepath.Join(mount, sub), 0o755); err != nil {
					return err
				}
			}
			args = append(args, "--mount", "--mount-ipfs", filepath.Join(mount, "ipfs"),
				"--mount-ipns", filepath.Join(mount, "ipns"), "--mount-mfs", filepath.Join(mount, "mfs"))
		}
	case bsfs:
		args = []string{"daemon", "--listen", "/ip4/127.0.0.1/tcp/0"}
		if mount != "" {
			if err := os.MkdirAll(mount, 0o755); err != nil {
				return err
			}
			args = []string{"mount", mount, "--listen", "/ip4/127.0.0.1/tcp/0"}
			ready = bsfsMountedLine
		}
		args = append(args, n.extra...)
	}
	cmd := exec.Command(n.bin, args...)
	cmd.Env = n.env()
	d, err := p.start(ctx, n.name, cmd, filepath.Join(filepath.Dir(n.dir), n.name+".log"), ready)
	if err != nil {
		return err
	}
	n.d = d
	if err := n.discover(ctx); err != nil {
		p.stop(d)
		n.d = nil
		return err
	}
	return nil
}

// bsfsMountedLine is what `bsfs mount` prints once mounted.
const bsfsMountedLine = "Mounted at "

// discover finds the node's swarm address and API.
func (n *node) discover(ctx context.Context) error {
	if n.impl == bsfs {
		for _, line := range n.d.startLines() {
			if a, ok := strings.CutPrefix(line, "Swarm listening on "); ok && strings.Contains(a, "/tcp/") {
				n.addr = strings.TrimSpace(a)
			}
		}
		if n.addr == "" {
			return fmt.Errorf("%s printed no TCP listen address", n.name)
		}
		sock := filepath.Join(n.dir, "api.sock")
		n.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		}}
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(n.dir, "api"))
	if err != nil {
		return err
	}
	// "/ip4/127.0.0.1/tcp/PORT"
	f := strings.Split(strings.TrimSpace(string(raw)), "/")
	if len(f) != 5 {
		return fmt.Errorf("api file %q", raw)
	}
	n.api = "http://" + net.JoinHostPort(f[2], f[4])
	n.client = &http.Client{Transport: &http.Transport{}}
	var id struct {
		ID        string
		Addresses []string
	}
	body, err := n.rpc(ctx, "id", nil, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &id); err != nil {
		return err
	}
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			n.addr = a
		}
	}
	if n.addr == "" {
		return fmt.Errorf("%s listens on no 127.0.0.1 TCP address: %v", n.name, id.Addresses)
	}
	return nil
}

// stop stops the daemon, if it runs.
func (n *node) stop(p *procs) error {
	if n.d == nil {
		return nil
	}
	if n.client != nil {
		n.client.CloseIdleConnections()
	}
	err := p.stop(n.d)
	n.d = nil
	return err
}

// connect dials other from n.
func (n *node) connect(ctx context.Context, other *node) error {
	_, err := n.cli(ctx, "swarm", "connect", other.addr)
	return err
}

// rpc POSTs a Kubo RPC call; a non-nil body is sent as the file "file".
func (n *node) rpc(ctx context.Context, cmd string, args url.Values, body []byte) ([]byte, error) {
	var (
		rd io.Reader
		ct string
	)
	if body != nil {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile("file", "file")
		if err != nil {
			return nil, err
		}
		fw.Write(body)
		if err := mw.Close(); err != nil {
			return nil, err
		}
		rd, ct = &buf, mw.FormDataContentType()
	}
	u := n.api + "/api/v0/" + cmd
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, rd)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return n.do(req)
}

func (n *node) do(req *http.Request) ([]byte, error) {
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", n.name, req.URL.Path, resp.StatusCode, oneLine(string(out)))
	}
	return out, nil
}

// putBlock stores data as a raw block through the daemon's API and checks
// the CID it answers.
func (n *node) putBlock(ctx context.Context, data []byte) (cid.Cid, error) {
	want, err := rawPrefix.Sum(data)
	if err != nil {
		return cid.Undef, err
	}
	var got string
	if n.impl == kubo {
		out, err := n.rpc(ctx, "block/put", url.Values{"cid-codec": {"raw"}, "mhtype": {"sha2-256"}}, data)
		if err != nil {
			return cid.Undef, err
		}
		var res struct{ Key string }
		if err := json.Unmarshal(out, &res); err != nil {
			return cid.Undef, err
		}
		got = res.Key
	} else {
		q := fmt.Sprintf("version=1&codec=%d&mhtype=%d&mhlen=32", cid.Raw, multihash.SHA2_256)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://bsfs/v0/block/put?"+q, bytes.NewReader(data))
		if err != nil {
			return cid.Undef, err
		}
		out, err := n.do(req)
		if err != nil {
			return cid.Undef, err
		}
		got = strings.TrimSpace(string(out))
	}
	if got != want.String() {
		return cid.Undef, fmt.Errorf("%s block put answered %s, want %s", n.name, got, want)
	}
	return want, nil
}

// getBlockAPI fetches c through the daemon's API: Kubo's RPC over TCP,
// bsfs's local API over its unix socket.
func (n *node) getBlockAPI(ctx context.Context, c cid.Cid) ([]byte, error) {
	if n.impl == kubo {
		return n.rpc(ctx, "block/get", url.Values{"arg": {c.String()}}, nil)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://bsfs/v0/block/get?arg="+c.String(), nil)
	if err != nil {
		return nil, err
	}
	return n.do(req)
}

// debug GETs a path of the bsfs daemon's debug endpoints: on the first
// http://127.0.0.1 address the daemon printed at start (a metrics
// listener), else on its API socket.
func (n *node) debug(ctx context.Context, path string) ([]byte, error) {
	base := "http://bsfs"
	for _, line := range n.d.startLines() {
		if i := strings.Index(line, "http://127.0.0.1:"); i >= 0 {
			if u, err := url.Parse(strings.Fields(line[i:])[0]); err == nil {
				base = "http://" + u.Host
				break
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	if base != "http://bsfs" {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s%s: HTTP %d", base, path, resp.StatusCode)
		}
		return io.ReadAll(resp.Body)
	}
	return n.do(req)
}

// hasCommand reports whether the node's command line knows the command.
func (n *node) hasCommand(ctx context.Context, name string) bool {
	_, err := n.cli(ctx, name, "--help")
	return err == nil
}

// catArgs, getArgs and addArgs are the command lines of cat, get and a
// recursive add that prints only the root CID.
func (n *node) catArgs(c string) []string { return []string{"cat", c} }

func (n *node) getArgs(c, out string) []string { return []string{"get", "-o", out, c} }

func (n *node) addArgs(path string) []string {
	if n.impl == kubo {
		return []string{"add", "-r", "-Q", "--cid-version=1", path}
	}
	return []string{"add", "-r", "-Q", path}
}
