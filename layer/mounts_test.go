//go:build linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

func init() {
	childScenarios["probe"] = childProbe
	childScenarios["mountpoint"] = childMountpoint
}

// childMountpoint prints whether its argument is a mount point of the program's namespace.
func childMountpoint(args []string) int {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == args[0] {
			fmt.Println("mounted")
			return 0
		}
	}
	fmt.Println("not mounted")
	return 0
}

// The namespace tests matter most for a user without privileges, whose process may mount in
// its user namespace only as that namespace's root: run them again as nobody.
func TestNamespacesAsAnUnprivilegedUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("unprivileged already: the other tests are this one")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A directory nobody can reach and write, holding a copy of this test binary.
	dir, err := os.MkdirTemp("", "remocal-layer-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "layer.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^(TestServedFiles|TestMountsAndHiddenPaths|TestConnectGoesThroughThePod)$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	// User namespaces work here (the test runs as root, which made one); for nobody too.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "LAYER_TEST_REQUIRE_USERNS=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestServedFiles ", "--- PASS: TestConnectGoesThroughThePod "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("as nobody, no %q:\n%s", want, out)
		}
	}
	t.Logf("as nobody:\n%s", out)
}

// childProbe prints, for each path, its content or the error reading it, and where it runs.
func childProbe(paths []string) int {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		var errno syscall.Errno
		if errors.As(err, &errno) {
			fmt.Printf("%s: error %s\n", p, unix.ErrnoName(errno))
			continue
		}
		if err != nil {
			fmt.Printf("%s: error %v\n", p, err)
			continue
		}
		fmt.Printf("%s: %q\n", p, b)
	}
	wd, _ := os.Getwd()
	fmt.Printf("cwd: %s\n", wd)
	fmt.Printf("ids: %d %d\n", os.Getuid(), os.Getgid())
	return 0
}

// memFS serves one directory holding files, from memory.
type memFS struct {
	fs.Inode
	files map[string]string
}

func (m *memFS) OnAdd(ctx context.Context) {
	for name, content := range m.files {
		child := m.NewPersistentInode(ctx, &fs.MemRegularFile{Data: []byte(content), Attr: fuse.Attr{Mode: 0o644}}, fs.StableAttr{Mode: syscall.S_IFREG})
		m.AddChild(name, child, false)
	}
}

func serveMem(t *testing.T, files map[string]string) func(context.Context, *os.File) {
	return func(_ context.Context, dev *os.File) {
		// go-fuse closes what it serves: a duplicate, so that dev is not closed twice.
		fd, err := unix.FcntlInt(dev.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		dev.Close()
		if err != nil {
			t.Errorf("duplicate the FUSE device: %v", err)
			return
		}
		server, err := fuse.NewServer(fs.NewNodeFS(&memFS{files: files}, &fs.Options{}), "/dev/fd/"+strconv.Itoa(fd), &fuse.MountOptions{})
		if err != nil {
			t.Errorf("serve FUSE: %v", err)
			return
		}
		server.Serve()
	}
}

// A served filesystem appears at a path that does not exist locally (its ancestors made in a
// shadow of /) and at one that does, a hidden path looks absent, and everything else, the
// working directory included, stays as it was.
func TestMountsAndHiddenPaths(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	local := t.TempDir()
	for name, content := range map[string]string{"secret": "local secret", "kept": "local kept"} {
		if err := os.WriteFile(filepath.Join(local, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	existing := t.TempDir()
	if err := os.WriteFile(filepath.Join(existing, "under"), []byte("covered"), 0o644); err != nil {
		t.Fatal(err)
	}
	absent := fmt.Sprintf("/remocal-test-%d/etc/app", os.Getpid())
	s := newTestSupervisor(t, Config{
		Mounts: []Mount{
			{Path: absent, ReadOnly: true, Serve: serveMem(t, map[string]string{"config.yaml": "remote config"})},
			{Path: existing, Serve: serveMem(t, map[string]string{"remote": "remote file"})},
			{Path: absent + "/nested", Serve: serveMem(t, nil)}, // inside another: dropped
		},
		Hidden: []string{filepath.Join(local, "secret")},
	})
	got := runUnder(t, s, "probe",
		absent+"/config.yaml", existing+"/remote", existing+"/under",
		filepath.Join(local, "secret"), filepath.Join(local, "kept"), "/etc/hostname")
	hostname, _ := os.ReadFile("/etc/hostname")
	wd, _ := os.Getwd()
	for _, want := range []string{
		absent + `/config.yaml: "remote config"`,
		existing + `/remote: "remote file"`,
		existing + "/under: error ENOENT",
		local + "/secret: error ENOENT",
		local + `/kept: "local kept"`,
		fmt.Sprintf("/etc/hostname: %q", hostname),
		"cwd: " + wd,
		// The helper mounts as root of its namespace; the program is the user again.
		fmt.Sprintf("ids: %d %d", os.Getuid(), os.Getgid()),
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(absent))); err == nil {
		t.Errorf("%s was made on the machine, not in the program's namespace", filepath.Dir(filepath.Dir(absent)))
	}
}
