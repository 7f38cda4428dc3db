//go:build linux

package remotefs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// dirRemote is a Remote over a local directory standing for the remote root: what the sidecar
// does, without the link.
type dirRemote struct{ root string }

func (d dirRemote) local(p string) string { return filepath.Join(d.root, p) }

func statOf(fi fs.FileInfo) wire.FileStat {
	st := fi.Sys().(*syscall.Stat_t)
	return wire.FileStat{Mode: st.Mode, Size: st.Size, Blocks: st.Blocks, Ino: st.Ino, Nlink: uint32(st.Nlink), UID: st.Uid, GID: st.Gid,
		Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

func (d dirRemote) Lstat(_ context.Context, p string) (wire.FileStat, error) {
	fi, err := os.Lstat(d.local(p))
	if err != nil {
		return wire.FileStat{}, err
	}
	return statOf(fi), nil
}

func (d dirRemote) Stat(_ context.Context, p string) (wire.FileStat, error) {
	fi, err := os.Stat(d.local(p))
	if err != nil {
		return wire.FileStat{}, err
	}
	return statOf(fi), nil
}

func (d dirRemote) ReadDir(_ context.Context, p string) ([]wire.DirEntry, error) {
	entries, err := os.ReadDir(d.local(p))
	if err != nil {
		return nil, err
	}
	var out []wire.DirEntry
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, wire.DirEntry{Name: e.Name(), Stat: statOf(fi)})
	}
	return out, nil
}

func (d dirRemote) ReadLink(_ context.Context, p string) (string, error) {
	return os.Readlink(d.local(p))
}

func (d dirRemote) ReadFileLimit(_ context.Context, p string, limit int64) ([]byte, wire.FileStat, error) {
	fi, err := os.Stat(d.local(p))
	if err != nil {
		return nil, wire.FileStat{}, err
	}
	if fi.Size() > limit {
		return nil, wire.FileStat{}, syscall.EFBIG
	}
	b, err := os.ReadFile(d.local(p))
	return b, statOf(fi), err
}

func (d dirRemote) WriteFile(ctx context.Context, p string, data []byte, mode uint32) (wire.FileStat, error) {
	perm := fs.FileMode(mode)
	if mode == 0 {
		perm = 0o644
	}
	if err := os.WriteFile(d.local(p), data, perm); err != nil {
		return wire.FileStat{}, err
	}
	return d.Lstat(ctx, p)
}

func (d dirRemote) Mkdir(ctx context.Context, p string, mode uint32) (wire.FileStat, error) {
	if err := os.Mkdir(d.local(p), fs.FileMode(mode)); err != nil {
		return wire.FileStat{}, err
	}
	return d.Lstat(ctx, p)
}

func (d dirRemote) Remove(_ context.Context, p string, dir bool) error {
	if dir {
		return unix.Rmdir(d.local(p))
	}
	return unix.Unlink(d.local(p))
}

func (d dirRemote) Rename(_ context.Context, from, to string) error {
	return os.Rename(d.local(from), d.local(to))
}

func (d dirRemote) Symlink(ctx context.Context, target, p string) (wire.FileStat, error) {
	if err := os.Symlink(target, d.local(p)); err != nil {
		return wire.FileStat{}, err
	}
	return d.Lstat(ctx, p)
}

// mount serves remote's opts.Root at a new directory and returns it. It needs root (a FUSE
// mount without fusermount).
func mount(t *testing.T, remote Remote, opts Options) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	dir := t.TempDir()
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no FUSE: %v", err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if !opts.Writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("remocal-test", dir, "fuse.remocal", flags, fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", dev.Fd())); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(t.Context(), dev, remote, opts) }()
	disablePoll(t, dir)
	t.Cleanup(func() {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after the unmount")
		}
	})
	return dir
}

// disablePoll makes the kernel stop sending FUSE_POLL requests to this mount. This test process
// serves the mount and also opens files on it, and Go adds every opened file to its epoll set:
// epoll_ctl then waits in the kernel for the server's answer to FUSE_POLL while holding one of the
// runtime's Ps, which deadlocked a CI run when the other P was needed elsewhere (a GC stop).
// go-fuse answers its magic file's poll with ENOSYS, after which the kernel never asks again; it
// does this itself in WaitMount, but not for a mount given as a /dev/fd/N device, as here. The
// plugin never opens files on the mounts it serves (they live in the program's mount namespace).
func disablePoll(t *testing.T, dir string) {
	t.Helper()
	// syscall.Open, unlike os.Open, adds nothing to epoll; both calls release their P.
	fd, err := unix.Open(filepath.Join(dir, ".go-fuse-epoll-hack"), unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("poll hack: %v", err)
	}
	defer unix.Close(fd)
	_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
}

// configMapVolume lays files out in dir as the kubelet does for a ConfigMap volume: each
// name a symlink through ..data to a timestamped directory.
func configMapVolume(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	data := filepath.Join(dir, ".."+stamp)
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The switch is one rename of a new symlink over ..data, as the kubelet's atomic writer.
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(".."+stamp, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestConfigMapLayoutAndUpdates(t *testing.T) {
	remote := t.TempDir()
	volume := filepath.Join(remote, "etc", "app")
	if err := os.MkdirAll(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	configMapVolume(t, volume, "2026_12_01_1", map[string]string{"config.yaml": "v: 1\n"})
	mnt := mount(t, dirRemote{remote}, Options{Root: "/etc/app", MaxFileSize: 1 << 20, CacheTimeout: 100 * time.Millisecond})

	if b, err := os.ReadFile(filepath.Join(mnt, "config.yaml")); err != nil || string(b) != "v: 1\n" {
		t.Fatalf("read: %q, %v", b, err)
	}
	entries, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "..2026_12_01_1 ..data config.yaml"; got != want {
		t.Fatalf("listing %q, want %q", got, want)
	}
	fi, err := os.Lstat(filepath.Join(mnt, "config.yaml"))
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("config.yaml is not a symlink: %v, %v", fi, err)
	}
	orig, _ := os.Stat(filepath.Join(volume, "..data", "config.yaml"))
	got, _ := os.Stat(filepath.Join(mnt, "config.yaml"))
	if got == nil || got.Size() != orig.Size() || got.Mode() != orig.Mode() || !got.ModTime().Equal(orig.ModTime()) {
		t.Fatalf("metadata differs: got %v, remote %v", got, orig)
	}

	configMapVolume(t, volume, "2026_12_01_2", map[string]string{"config.yaml": "v: 2 (updated)\n"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(mnt, "config.yaml"))
		if err == nil && string(b) == "v: 2 (updated)\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the update is not seen: %q, %v", b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestErrorsAreTheRemotes(t *testing.T) {
	remote := t.TempDir()
	if err := os.MkdirAll(filepath.Join(remote, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remote, "d", "big"), make([]byte, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remote, "d", "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tooLarge []string
	mnt := mount(t, dirRemote{remote}, Options{
		Root: "/d", MaxFileSize: 1024,
		Absent: func(p string) bool { return p == "/d/secret" },
		OnTooLarge: func(p string, _ int64) {
			mu.Lock()
			defer mu.Unlock()
			tooLarge = append(tooLarge, p)
		},
	})
	for _, c := range []struct {
		path string
		want syscall.Errno
	}{
		{"missing", syscall.ENOENT},
		{"sub", syscall.EISDIR},
		{"big/x", syscall.ENOTDIR},
		{"big", syscall.EFBIG},
		{"secret", syscall.ENOENT},
	} {
		_, err := os.ReadFile(filepath.Join(mnt, c.path))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.path, err, c.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tooLarge) != 1 || tooLarge[0] != "/d/big" {
		t.Errorf("told of files too large: %v", tooLarge)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write on a read-only mount: %v", err)
	}
}

func TestWritesReachTheRemoteOnClose(t *testing.T) {
	remote := t.TempDir()
	if err := os.MkdirAll(filepath.Join(remote, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := mount(t, dirRemote{remote}, Options{Root: "/scratch", Writable: true, MaxFileSize: 1 << 20})

	if err := os.Mkdir(filepath.Join(mnt, "out"), 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(mnt, "out", "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("first "); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("second\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(remote, "scratch", "out", "a.txt")); len(b) != 0 {
		t.Fatalf("bytes reached the remote before close: %q", b)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(remote, "scratch", "out", "a.txt")); err != nil || string(b) != "first second\n" {
		t.Fatalf("remote has %q, %v", b, err)
	}
	// Appending keeps what was there; truncate, rename and remove are carried too.
	af, err := os.OpenFile(filepath.Join(mnt, "out", "a.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := af.WriteString("third\n"); err != nil {
		t.Fatal(err)
	}
	if err := af.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(remote, "scratch", "out", "a.txt")); string(b) != "first second\nthird\n" {
		t.Fatalf("after append the remote has %q", b)
	}
	if err := os.Truncate(filepath.Join(mnt, "out", "a.txt"), 2<<20); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("truncate past the size bound: %v, want EFBIG", err)
	}
	if err := os.Truncate(filepath.Join(mnt, "out", "a.txt"), 5); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "out", "a.txt"), filepath.Join(mnt, "b.txt")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(remote, "scratch", "b.txt")); string(b) != "first" {
		t.Fatalf("after truncate and rename the remote has %q", b)
	}
	if err := os.Remove(filepath.Join(mnt, "b.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mnt, "out")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(remote, "scratch")); len(entries) != 0 {
		t.Fatalf("left in the remote: %v", entries)
	}
}

// ctxRecorder records whether a write's context was already done when it started.
type ctxRecorder struct {
	dirRemote
	done error
}

func (r *ctxRecorder) WriteFile(ctx context.Context, p string, data []byte, mode uint32) (wire.FileStat, error) {
	r.done = ctx.Err()
	return r.dirRemote.WriteFile(ctx, p, data, mode)
}

// An interrupted close (any signal, Go's preemption SIGURG included) must still write: the
// kernel cannot restart a close.
func TestInterruptsDoNotCancelOperations(t *testing.T) {
	rec := &ctxRecorder{dirRemote: dirRemote{t.TempDir()}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (patient{rec}).WriteFile(ctx, "/f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec.done != nil {
		t.Fatalf("the write saw its context done: %v", rec.done)
	}
}

// A program watching its configuration file with inotify (through the symlinks, as
// inotify_add_watch follows them) is told when the kubelet replaces the ConfigMap's data: the
// old file goes, and its watch fires IN_DELETE_SELF, as in the pod.
func TestWatchersOfAConfigMapFileAreTold(t *testing.T) {
	remote := t.TempDir()
	volume := filepath.Join(remote, "etc", "app")
	if err := os.MkdirAll(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	configMapVolume(t, volume, "2026_12_01_1", map[string]string{"config.yaml": "v: 1\n"})
	mnt := mount(t, dirRemote{remote}, Options{Root: "/etc/app", MaxFileSize: 1 << 20, CacheTimeout: 100 * time.Millisecond})

	watcher, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(watcher)
	if _, err := unix.InotifyAddWatch(watcher, filepath.Join(mnt, "config.yaml"), unix.IN_MODIFY|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF); err != nil {
		t.Fatal(err)
	}
	configMapVolume(t, volume, "2026_12_01_2", map[string]string{"config.yaml": "v: 2\n"})
	if err := os.RemoveAll(filepath.Join(volume, "..2026_12_01_1")); err != nil {
		t.Fatal(err)
	}
	events := make(chan uint32, 1)
	go func() {
		buf := make([]byte, 4096)
		if n, err := unix.Read(watcher, buf); err == nil && n >= unix.SizeofInotifyEvent {
			events <- binary.NativeEndian.Uint32(buf[4:8]) // struct inotify_event's mask
		}
	}()
	select {
	case mask := <-events:
		if mask&unix.IN_DELETE_SELF == 0 {
			t.Fatalf("event %#x, want IN_DELETE_SELF", mask)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no inotify event within 5 s of the update")
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "config.yaml")); err != nil || string(b) != "v: 2\n" {
		t.Fatalf("after the event: %q, %v", b, err)
	}
}
