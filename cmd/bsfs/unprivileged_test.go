package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bsfs/bsfs/internal/mounttest"
)

// The unprivileged tests run `bsfs mount` as the user nobody, through
// fusermount3, the way most people run it. The test itself must be root:
// it runs the processes as nobody and gives them the /dev/fuse they need
// without changing the machine's. Distributions ship /dev/fuse with mode
// 0666; where it is 0600 (as in some containers), the test runs in a mount
// namespace of its own thread, in which a device node of the same numbers
// and the mode under test is bind-mounted over /dev/fuse. Every process it
// starts inherits that namespace, fusermount3 included: it opens
// /dev/fuse as nobody, mounts, and passes the descriptor back as it does
// anywhere. Mounts made there are seen only there, and end with it.

// unprivileged is a user who is not root.
type unprivileged struct {
	uid, gid uint32
}

// requireUnprivileged returns the user nobody, or skips the test when it
// cannot run here: not root, no fusermount3, no /dev/fuse, no such user.
// BSFS_REQUIRE_ROOT=1 and BSFS_REQUIRE_FUSE=1 fail it instead.
func requireUnprivileged(t *testing.T) unprivileged {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("BSFS_REQUIRE_ROOT") == "1" {
			t.Fatal("running bsfs as another user needs root (BSFS_REQUIRE_ROOT=1)")
		}
		t.Skip("running bsfs as another user needs root (set BSFS_REQUIRE_ROOT=1 to fail instead); as this user the other mount tests go through fusermount3 already")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		mounttest.SkipFUSE(t, "no fusermount3 (install fuse3): "+err.Error())
	}
	var st unix.Stat_t
	if err := unix.Stat("/dev/fuse", &st); err != nil {
		mounttest.SkipFUSE(t, "no /dev/fuse: "+err.Error())
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		if os.Getenv("BSFS_REQUIRE_ROOT") == "1" {
			t.Fatalf("no user nobody to run bsfs as (BSFS_REQUIRE_ROOT=1): %v", err)
		}
		t.Skipf("no user nobody to run bsfs as: %v", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return unprivileged{uint32(uid), uint32(gid)}
}

// fuseNamespace moves the calling goroutine, for good, onto a thread in a
// mount namespace of its own, where /dev/fuse has mode perm, and with
// hide, where neither fusermount3 nor fusermount can be found. Call it
// from the test's goroutine (not a subtest's parent) before starting
// anything. Its mounts do not propagate out; the namespace ends with the
// test's goroutine (the locked thread exits with it) and the processes it
// started.
func fuseNamespace(t *testing.T, perm uint32, hide bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/dev/fuse", &st); err != nil {
		t.Fatal(err)
	}
	// A thread whose namespace changed is never reused nor used to start
	// other threads: the runtime ends it when the goroutine exits locked.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare the mount namespace: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		t.Fatalf("make the namespace's mounts slaves: %v", err)
	}
	node := filepath.Join(t.TempDir(), "fuse")
	if err := unix.Mknod(node, unix.S_IFCHR|perm, int(st.Rdev)); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	if err := os.Chmod(node, os.FileMode(perm)); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := unix.Mount(node, "/dev/fuse", "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind a /dev/fuse of mode %o: %v", perm, err)
	}
	if !hide {
		return
	}
	for _, name := range []string{"fusermount3", "/bin/fusermount3", "fusermount", "/bin/fusermount"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// /dev/null is not executable: LookPath and exec both refuse it.
		if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("hide %s: %v", p, err)
		}
	}
	for _, name := range []string{"fusermount3", "/bin/fusermount3", "fusermount", "/bin/fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			t.Fatalf("%s still found after hiding it", p)
		}
	}
}

// userDir returns a new directory owned by u, under a parent every user
// may traverse; it is removed at the end of the test.
func userDir(t *testing.T, u unprivileged, name string) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	for p := base; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if p != base {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chown(base, int(u.uid), int(u.gid)); err != nil {
		t.Fatal(err)
	}
	return base
}

// command is exec.Command run as u in dir, with BSFS_PATH=repoPath.
func (u unprivileged) command(dir, repoPath, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BSFS_PATH="+repoPath, "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}}
	return cmd
}

// run runs name as u and waits at most commandTimeout; it returns stdout,
// stderr and the exit code.
func (u unprivileged) run(t *testing.T, dir, repoPath, name string, args ...string) result {
	t.Helper()
	cmd := u.command(dir, repoPath, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(commandTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s as uid %d: did not finish within %s; stderr: %s", name, strings.Join(args, " "), u.uid, commandTimeout, stderr.String())
	}
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		res.code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s as uid %d: %v", name, strings.Join(args, " "), u.uid, err)
	}
	return res
}

// startMount starts `bsfs mount dir` as u on repoPath, listening on
// loopback only, and waits until it has mounted.
func (u unprivileged) startMount(t *testing.T, work, repoPath, dir string) *daemon {
	t.Helper()
	cmd := u.command(work, repoPath, bsfsBin, "mount", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")
	return startMountCmd(t, repoPath, dir, cmd)
}

// readAs reads path with cat as u and fails unless it gets want.
func (u unprivileged) readAs(t *testing.T, work, path string, want []byte) {
	t.Helper()
	res := u.run(t, work, "", "cat", path)
	if res.code != 0 || res.stdout != string(want) {
		t.Fatalf("cat %s as uid %d: exit %d, %d bytes (want %d); stderr: %s", path, u.uid, res.code, len(res.stdout), len(want), res.stderr)
	}
}

// mountOptions returns the mount options and the file system's options of
// the topmost mount at dir in the calling thread's mount table, and its
// type.
func mountOptions(t *testing.T, dir string) (opts, fsType, superOpts string) {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep > 4 && len(f) > sep+3 && f[4] == dir {
			opts, fsType, superOpts = f[5], f[sep+1], f[sep+3]
		}
	}
	if fsType == "" {
		t.Fatalf("no mount at %s", dir)
	}
	return opts, fsType, superOpts
}

// procUID returns the real and effective user IDs of process pid.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Join(strings.Fields(rest)[:2], " ")
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return ""
}

// TestMountUnprivileged runs the mount's core as the user nobody with
// /dev/fuse open to users (0666): `bsfs mount` mounts through fusermount3
// (the mount is nobody's: user_id=<uid>, nosuid, nodev, and the process
// runs as nobody); a second `bsfs mount` there, as nobody or as root, is
// refused; `cat` as nobody reads a file fetched from a peer over
// loopback; SIGINT to a `cat` waiting for a block nobody has ends it and
// the want; SIGINT to `bsfs mount` unmounts (fusermount3 -u) and leaves
// nothing in /proc/mounts; and after `bsfs mount` is killed, the next one
// detaches the dead mount (fusermount3 -u -z) and serves again.
func TestMountUnprivileged(t *testing.T) {
	u := requireUnprivileged(t)
	fuseNamespace(t, 0o666, false)
	work := userDir(t, u, "work")
	repoB, dir := filepath.Join(work, "repo"), filepath.Join(work, "mnt")
	for _, d := range []string{repoB, dir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(u.uid), int(u.gid)); err != nil {
			t.Fatal(err)
		}
	}

	repoA := t.TempDir()
	a := startDaemon(t, repoA, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")
	path, data := randomFile(t, 600<<10)
	c := strings.TrimSpace(ok(t, repoA, "", "add", "-Q", path))

	m := u.startMount(t, work, repoB, dir)
	checkUserMount(t, u, m, dir)

	// No second mount on top, by nobody or by root (whom nobody's mount
	// does not answer).
	res := u.run(t, work, repoB, bsfsBin, "mount", dir)
	if res.code == 0 || !strings.Contains(res.stderr, "live mount of bsfs (type fuse.bsfs)") {
		t.Errorf("bsfs mount as uid %d on its live mount: exit %d, %q; want it refused, naming the mount", u.uid, res.code, res.stderr)
	}
	if msg := fails(t, t.TempDir(), "", "mount", dir); !strings.Contains(msg, "another user's mount of bsfs (type fuse.bsfs)") {
		t.Errorf("bsfs mount as root on uid %d's live mount: %q; want it refused, naming the mount", u.uid, msg)
	}
	if k := mounttest.At(t, dir); k != 1 {
		t.Errorf("%d mounts at %s, want 1", k, dir)
	}

	ok(t, repoA, "", "swarm", "connect", m.tcpAddr(t))
	u.readAs(t, work, filepath.Join(dir, c), data)

	interruptRead(t, u, work, repoB, dir)

	stopMount(t, m, dir, syscall.SIGINT)

	// Killed, the mount leaves a dead mount point; the next mount, as
	// nobody too, removes it.
	m = u.startMount(t, work, repoB, dir)
	m.cmd.Process.Kill()
	<-m.exited
	if res := u.run(t, work, "", "stat", dir); res.code == 0 || !strings.Contains(res.stderr, "not connected") {
		t.Fatalf("stat of the killed mount as uid %d: exit %d, %q; want ENOTCONN", u.uid, res.code, res.stderr)
	}
	m = u.startMount(t, work, repoB, dir)
	if !m.logged("stale mount") {
		t.Errorf("no message about the stale mount; stderr: %s", m.stderr)
	}
	if k := mounttest.At(t, dir); k != 1 {
		t.Errorf("%d mounts at %s after recovering the stale one, want 1", k, dir)
	}
	u.readAs(t, work, filepath.Join(dir, c), data) // stored by the first mount's fetch
	stopMount(t, m, dir, syscall.SIGINT)
	a.stopClean(t)
}

// checkUserMount checks that the mount m at dir runs as u and is u's
// FUSE mount, read-only, without setuid or devices.
func checkUserMount(t *testing.T, u unprivileged, m *daemon, dir string) {
	t.Helper()
	if got, want := procUID(t, m.cmd.Process.Pid), strconv.Itoa(int(u.uid))+" "+strconv.Itoa(int(u.uid)); got != want {
		t.Errorf("bsfs mount runs as uids %q, want %q", got, want)
	}
	opts, fsType, superOpts := mountOptions(t, dir)
	t.Logf("mount at %s: %s %s %s", dir, fsType, opts, superOpts)
	if fsType != "fuse.bsfs" || !slices.Contains(strings.Split(superOpts, ","), "user_id="+strconv.Itoa(int(u.uid))) {
		t.Errorf("mount at %s: type %s, options %s; want fuse.bsfs with user_id=%d", dir, fsType, superOpts, u.uid)
	}
	for _, o := range []string{"ro", "nosuid", "nodev"} {
		if !slices.Contains(strings.Split(opts, ","), o) {
			t.Errorf("mount options %s lack %s (fusermount3 sets nosuid,nodev)", opts, o)
		}
	}
}

// interruptRead checks Ctrl-C on a reader waiting, as u, for a block
// nobody has through the mount at dir of repo: the reader exits, and the
// want is cancelled.
func interruptRead(t *testing.T, u unprivileged, work, repo, dir string) {
	t.Helper()
	absent := absentCID(t, "nobody has this block, mounted by nobody")
	cat := u.command(work, "", "cat", filepath.Join(dir, absent.String()))
	if err := interruptCat(t, cat, repo, absent.String()); err == nil {
		t.Errorf("cat of a block nobody has exited 0 after SIGINT")
	}
}

// TestMountUnprivilegedErrors runs `bsfs mount` as nobody where it cannot
// mount: /dev/fuse closed to users (mode 0600), and fusermount3 not
// installed. Each fails at once with one line saying what to do, prints
// nothing else, and mounts nothing.
func TestMountUnprivilegedErrors(t *testing.T) {
	u := requireUnprivileged(t)
	for _, tc := range []struct {
		name string
		perm uint32
		hide bool
		want []string
	}{
		{"dev-fuse-0600", 0o600, false, []string{"cannot open /dev/fuse: permission denied", "chmod 0666 /dev/fuse"}},
		{"no-fusermount3", 0o666, true, []string{"fusermount3 not found", "install the fuse3 package"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fuseNamespace(t, tc.perm, tc.hide)
			work := userDir(t, u, "work")
			dir := filepath.Join(work, "mnt")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, int(u.uid), int(u.gid)); err != nil {
				t.Fatal(err)
			}
			res := u.run(t, work, filepath.Join(work, "repo"), bsfsBin, "mount", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "")
			if res.code == 0 {
				t.Fatalf("bsfs mount as uid %d exited 0; stdout: %q", u.uid, res.stdout)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
			line, rest, _ := strings.Cut(res.stderr, "\n")
			if rest != "" || !strings.HasPrefix(line, "Error: ") {
				t.Errorf("stderr %q, want one line \"Error: ...\"", res.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(line, want) {
					t.Errorf("error %q lacks %q", line, want)
				}
			}
			if isMounted(t, dir) {
				t.Errorf("%s mounted", dir)
			}
		})
	}
}
