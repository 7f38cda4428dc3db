//go:build linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

func serveMem(t *testing.T, files map[string]string) func(dev *os.File) {
	return func(dev *os.File) {
		defer runtime.KeepAlive(dev)
		server, err := fuse.NewServer(fs.NewNodeFS(&memFS{files: files}, &fs.Options{}), "/dev/fd/"+strconv.Itoa(int(dev.Fd())), &fuse.MountOptions{})
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
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(absent))); err == nil {
		t.Errorf("%s was made on the machine, not in the program's namespace", filepath.Dir(filepath.Dir(absent)))
	}
}
