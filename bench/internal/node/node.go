// Package node starts and drives the daemons the benchmark scripts run:
// Kubo and bsfs repositories on 127.0.0.1, their daemons as child
// processes with a log file each, and their command lines.
package node

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
	"github.com/bsfs/bsfs/repo"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Impl names an implementation: Kubo or bsfs.
type Impl string

// The implementations.
const (
	Kubo Impl = "Kubo"
	Bsfs Impl = "bsfs"
)

// ReadyLine is what both daemons print once they serve.
const ReadyLine = "Daemon is ready"

// rawPrefix is the CID of a raw block hashed with sha2-256, CIDv1.
var rawPrefix = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}

// Node is one repository of either implementation and, while it runs, its
// daemon.
type Node struct {
	Impl Impl
	Bin  string // the ipfs or bsfs binary
	Dir  string // IPFS_PATH or BSFS_PATH
	// Name names the node in messages; the daemon's log is Name.log next
	// to Dir.
	Name string
	// Extra are bsfs flags for the daemon and the mount.
	Extra []string

	// Proc is the running daemon, or nil.
	Proc *Proc
	// Addr is the daemon's TCP swarm address ending in /p2p/<id>.
	Addr   string
	api    string       // Kubo: RPC base URL
	client *http.Client // Kubo: TCP; bsfs: the API socket
}

// Env is the environment of the node's commands: the process's, with the
// repository's path; for bsfs also the test profile for any repository a
// command creates, so that no benchmark node leaves the loopback interface
// (a bsfs built from an older revision ignores it, and its defaults were
// loopback-only).
func (n *Node) Env() []string {
	if n.Impl == Kubo {
		return append(os.Environ(), "IPFS_PATH="+n.Dir, "IPFS_TELEMETRY=off")
	}
	return append(os.Environ(), "BSFS_PATH="+n.Dir, repo.EnvInitProfile+"="+repo.ProfileTest)
}

// CLI runs the node's command line.
func (n *Node) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return RunCmd(ctx, n.Env(), n.Bin, args...)
}

// CLIInput runs the node's command line with in as its standard input.
func (n *Node) CLIInput(ctx context.Context, in io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Env = n.Env()
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(n.Bin), strings.Join(args, " "), err, OneLine(stderr.String()))
	}
	return out, nil
}

// InitRepo creates the node's repository. Kubo's test profile already
// writes blocks without fsync (flatfs "sync": false), as bsfs does; init
// checks that it still does.
func (n *Node) InitRepo(ctx context.Context) error {
	if n.Impl == Bsfs {
		if _, err := n.CLI(ctx, "init"); err != nil {
			return err
		}
		return checkPrivate(n.Dir)
	}
	if _, err := n.CLI(ctx, "init", "--profile=test", "--empty-repo"); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(n.Dir, "config"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(raw), `"sync": false`) {
		return errors.New("kubo's test profile no longer turns flatfs sync off: the comparison would not be like with like")
	}
	// Configured like the test peers, but on TCP only, as the bsfs daemons.
	return kubotest.Configure(n.Dir, kubotest.Options{TCPOnly: true})
}

// Start runs the node's daemon. With mount set it also mounts the node's
// content there, in the same process: Kubo runs `ipfs daemon --mount` (/ipfs
// at mount/ipfs); bsfs runs `bsfs mount`, which then runs its own node and
// serves no API, so other nodes must dial it.
func (n *Node) Start(ctx context.Context, p *Procs, mount string) error {
	var args []string
	ready := ReadyLine
	switch n.Impl {
	case Kubo:
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
	case Bsfs:
		if err := checkPrivate(n.Dir); err != nil {
			return err
		}
		args = []string{"daemon", "--listen", "/ip4/127.0.0.1/tcp/0"}
		if mount != "" {
			if err := os.MkdirAll(mount, 0o755); err != nil {
				return err
			}
			args = []string{"mount", mount, "--listen", "/ip4/127.0.0.1/tcp/0"}
			ready = MountedLine
		}
		args = append(args, n.Extra...)
	}
	cmd := exec.Command(n.Bin, args...)
	cmd.Env = n.Env()
	d, err := p.Start(ctx, n.Name, cmd, filepath.Join(filepath.Dir(n.Dir), n.Name+".log"), ready)
	if err != nil {
		return err
	}
	n.Proc = d
	if err := n.discover(ctx); err != nil {
		p.Stop(d)
		n.Proc = nil
		return err
	}
	return nil
}

// MountedLine is what bsfs prints once mounted, followed by the directory.
const MountedLine = "Mounted at "

// discover finds the node's swarm address and API.
func (n *Node) discover(ctx context.Context) error {
	if n.Impl == Bsfs {
		for _, line := range n.Proc.StartLines() {
			if a, ok := strings.CutPrefix(line, "Swarm listening on "); ok && strings.Contains(a, "/tcp/") {
				n.Addr = strings.TrimSpace(a)
			}
		}
		if n.Addr == "" {
			return fmt.Errorf("%s printed no TCP listen address", n.Name)
		}
		sock := filepath.Join(n.Dir, "api.sock")
		n.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		}}
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(n.Dir, "api"))
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
	body, err := n.RPC(ctx, "id", nil, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &id); err != nil {
		return err
	}
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			n.Addr = a
		}
	}
	if n.Addr == "" {
		return fmt.Errorf("%s listens on no 127.0.0.1 TCP address: %v", n.Name, id.Addresses)
	}
	return nil
}

// Stop stops the daemon, if it runs.
func (n *Node) Stop(p *Procs) error {
	if n.Proc == nil {
		return nil
	}
	if n.client != nil {
		n.client.CloseIdleConnections()
	}
	err := p.Stop(n.Proc)
	n.Proc = nil
	return err
}

// Connect dials other from n.
func (n *Node) Connect(ctx context.Context, other *Node) error {
	_, err := n.CLI(ctx, "swarm", "connect", other.Addr)
	return err
}

// RPC POSTs a Kubo RPC call; a non-nil body is sent as the file "file".
func (n *Node) RPC(ctx context.Context, cmd string, args url.Values, body []byte) ([]byte, error) {
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

func (n *Node) do(req *http.Request) ([]byte, error) {
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
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", n.Name, req.URL.Path, resp.StatusCode, OneLine(string(out)))
	}
	return out, nil
}

// PutBlock stores data as a raw block through the daemon's API and checks
// the CID it answers.
func (n *Node) PutBlock(ctx context.Context, data []byte) (cid.Cid, error) {
	want, err := rawPrefix.Sum(data)
	if err != nil {
		return cid.Undef, err
	}
	var got string
	if n.Impl == Kubo {
		out, err := n.RPC(ctx, "block/put", url.Values{"cid-codec": {"raw"}, "mhtype": {"sha2-256"}}, data)
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
		return cid.Undef, fmt.Errorf("%s block put answered %s, want %s", n.Name, got, want)
	}
	return want, nil
}

// GetBlockAPI fetches c through the daemon's API: Kubo's RPC over TCP,
// bsfs's local API over its unix socket.
func (n *Node) GetBlockAPI(ctx context.Context, c cid.Cid) ([]byte, error) {
	if n.Impl == Kubo {
		return n.RPC(ctx, "block/get", url.Values{"arg": {c.String()}}, nil)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://bsfs/v0/block/get?arg="+c.String(), nil)
	if err != nil {
		return nil, err
	}
	return n.do(req)
}

// Debug GETs a path of the bsfs daemon's debug endpoints: on the first
// http://127.0.0.1 address the daemon printed at start (a metrics
// listener), else on its API socket.
func (n *Node) Debug(ctx context.Context, path string) ([]byte, error) {
	base := "http://bsfs"
	for _, line := range n.Proc.StartLines() {
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

// HasCommand reports whether the node's command line knows the command.
func (n *Node) HasCommand(ctx context.Context, name string) bool {
	_, err := n.CLI(ctx, name, "--help")
	return err == nil
}

// CatArgs is the command line that writes file c to standard output.
func (n *Node) CatArgs(c string) []string { return []string{"cat", c} }

// GetArgs is the command line that writes c's tree to out.
func (n *Node) GetArgs(c, out string) []string { return []string{"get", "-o", out, c} }

// AddArgs is the command line of a recursive add that prints only the
// root CID.
func (n *Node) AddArgs(path string) []string {
	if n.Impl == Kubo {
		return []string{"add", "-r", "-Q", "--cid-version=1", path}
	}
	return []string{"add", "-r", "-Q", path}
}
