package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// configMapVersion is the directory of a ConfigMap volume's current version, as the kubelet
// names it.
const configMapVersion = "..2024_01_01_00_00_00.000000001"

// fsTarget is a fake /proc whose target has a ConfigMap volume at /etc/config, and links that
// would lead out of its root if followed anywhere but inside it, to outside: a directory next to
// the root, which no operation may see or change.
func fsTarget(t *testing.T) (procRoot, root, outside string) {
	t.Helper()
	procRoot = fakeProc(t, "A=1\x00")
	root = filepath.Join(procRoot, "1", "root")
	outside = t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("outside the target"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/etc/config/" + configMapVersion, "/srv/dir/sub", "/srv/empty"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, data := range map[string]string{
		"/etc/config/" + configMapVersion + "/app.yaml": "key: value\n",
		"/srv/data.txt": "in the target\n",
		"/srv/dir/file": "x",
	} {
		if err := os.WriteFile(filepath.Join(root, path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for path, target := range map[string]string{
		"/etc/config/..data":    configMapVersion,
		"/etc/config/app.yaml":  "..data/app.yaml",
		"/etc/abs-link":         "/srv/data.txt",
		"/etc/up-link":          "../../../../../srv/data.txt",
		"/etc/loop":             "/etc/loop",
		"/etc/out-abs":          outside,
		"/etc/out-up":           strings.Repeat("../", 12) + strings.TrimPrefix(outside, "/"),
		"/etc/root-link":        "/",
		"/etc/dangling":         "/nowhere",
		"/srv/dir-link":         "/srv/dir",
		"/srv/secret-elsewhere": outside + "/secret",
	} {
		if err := os.Symlink(target, filepath.Join(root, path)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "srv", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		entries, err := os.ReadDir(outside)
		if err != nil || len(entries) != 1 {
			t.Errorf("the directory outside the root holds %v, %v; want only its secret", entries, err)
		}
		if data, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(data) != "outside the target" {
			t.Errorf("the file outside the root: %q, %v", data, err)
		}
	})
	return procRoot, root, outside
}

// fsDo runs a request as the stream would, and returns its replies, or its failure as the client
// reads it back.
func fsDo(t *testing.T, srv *server, req wire.FSRequest) ([]wire.FSReply, error) {
	t.Helper()
	h := srv.files.hold()
	defer h.release()
	replies, err := srv.fsOp(t.Context(), req, req.Data, h)
	if err != nil {
		return nil, wire.FSReply{Errno: wire.ErrnoOf(err), Reason: err.Error()}.Err()
	}
	for i, r := range replies {
		if _, err := wire.AppendMessage(nil, r); err != nil {
			t.Fatalf("%s %s: reply %d does not encode: %v", req.Op, req.Path, i, err)
		}
		if r.More != (i < len(replies)-1) {
			t.Fatalf("%s %s: reply %d of %d has More=%v", req.Op, req.Path, i, len(replies), r.More)
		}
	}
	return replies, nil
}

// fsStat runs a request answered with a stat.
func fsStat(t *testing.T, srv *server, req wire.FSRequest) (wire.FileStat, error) {
	t.Helper()
	replies, err := fsDo(t, srv, req)
	if err != nil {
		return wire.FileStat{}, err
	}
	if len(replies) != 1 {
		t.Fatalf("%s %s: %d replies, want 1", req.Op, req.Path, len(replies))
	}
	return replies[0].Stat, nil
}

func fileType(st wire.FileStat) uint32 { return st.Mode & syscall.S_IFMT }

func TestFSLstatAndStat(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot}, slog.New(slog.DiscardHandler))
	var want syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(root, "srv", "data.txt"), &want); err != nil {
		t.Fatal(err)
	}
	st, err := fsStat(t, srv, wire.FSRequest{Op: wire.FSLstat, Path: "/srv/data.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != want.Mode || st.Size != want.Size || st.Ino != want.Ino || st.Nlink != uint32(want.Nlink) || st.UID != want.Uid ||
		st.Blocks != want.Blocks || st.Mtime != want.Mtim.Nano() || st.Ctime != want.Ctim.Nano() || st.Atime != want.Atim.Nano() {
		t.Errorf("lstat = %+v, want the kernel's %+v", st, want)
	}

	lstats := map[string]uint32{
		"/":                  syscall.S_IFDIR,
		"/etc/config/..data": syscall.S_IFLNK,
		"/etc/abs-link":      syscall.S_IFLNK,
		"/etc/loop":          syscall.S_IFLNK,
		"/srv/fifo":          syscall.S_IFIFO,
		"/srv//dir/":         syscall.S_IFDIR,
		"/srv/dir-link/file": syscall.S_IFREG, // a symlink before the last element resolves
		"/etc/root-link/srv": syscall.S_IFDIR,
	}
	for path, typ := range lstats {
		if st, err := fsStat(t, srv, wire.FSRequest{Op: wire.FSLstat, Path: path}); err != nil || fileType(st) != typ {
			t.Errorf("lstat %s: mode %o, %v; want type %o", path, st.Mode, err, typ)
		}
	}
	stats := map[string]int64{
		"/etc/abs-link":        int64(len("in the target\n")),
		"/etc/up-link":         int64(len("in the target\n")),
		"/etc/config/app.yaml": int64(len("key: value\n")),
	}
	for path, size := range stats {
		if st, err := fsStat(t, srv, wire.FSRequest{Op: wire.FSStat, Path: path}); err != nil || fileType(st) != syscall.S_IFREG || st.Size != size {
			t.Errorf("stat %s: mode %o size %d, %v; want a file of %d bytes", path, st.Mode, st.Size, err, size)
		}
	}
	if st, err := fsStat(t, srv, wire.FSRequest{Op: wire.FSStat, Path: "/etc/root-link"}); err != nil || fileType(st) != syscall.S_IFDIR {
		t.Errorf("stat of a link to /: mode %o, %v", st.Mode, err)
	}

	failures := []struct {
		op   wire.FSOp
		path string
		want syscall.Errno
	}{
		{wire.FSLstat, "/etc/missing", syscall.ENOENT},
		{wire.FSLstat, "/srv/data.txt/x", syscall.ENOTDIR},
		{wire.FSLstat, "etc/hosts", syscall.EINVAL},
		{wire.FSLstat, "", syscall.EINVAL},
		{wire.FSLstat, "/etc/../srv", syscall.EINVAL},
		{wire.FSLstat, "/srv/..", syscall.EINVAL},
		{wire.FSLstat, "/srv/data.txt\x00", syscall.EINVAL},
		{wire.FSLstat, "/etc/out-abs/secret", syscall.ENOENT}, // the link resolves inside the root
		{wire.FSLstat, "/etc/out-up/secret", syscall.ENOENT},
		{wire.FSStat, "/etc/loop", syscall.ELOOP},
		{wire.FSStat, "/etc/dangling", syscall.ENOENT},
		{wire.FSStat, "/etc/out-abs", syscall.ENOENT},
		{wire.FSStat, "/srv/secret-elsewhere", syscall.ENOENT},
		{wire.FSStat, "/etc/missing", syscall.ENOENT},
	}
	for _, f := range failures {
		if _, err := fsStat(t, srv, wire.FSRequest{Op: f.op, Path: f.path}); !errors.Is(err, f.want) {
			t.Errorf("%s %q: %v, want %v", f.op, f.path, err, f.want)
		}
	}
	if _, err := fsStat(t, srv, wire.FSRequest{Op: wire.FSLstat, Path: "/etc/missing"}); err == nil || err.Error() != "lstat /etc/missing: no such file or directory" {
		t.Errorf("the reason names the path asked for: %v", err)
	}
}

func TestFSReadDir(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot}, slog.New(slog.DiscardHandler))
	list := func(path string) ([]wire.DirEntry, int, error) {
		t.Helper()
		replies, err := fsDo(t, srv, wire.FSRequest{Op: wire.FSReadDir, Path: path})
		var entries []wire.DirEntry
		for _, r := range replies {
			entries = append(entries, r.Entries...)
		}
		return entries, len(replies), err
	}
	entries, _, err := list("/etc/config")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint32{}
	for _, e := range entries {
		got[e.Name] = fileType(e.Stat)
	}
	want := map[string]uint32{configMapVersion: syscall.S_IFDIR, "..data": syscall.S_IFLNK, "app.yaml": syscall.S_IFLNK}
	if !maps(got, want) {
		t.Errorf("the ConfigMap volume lists %v, want %v", got, want)
	}
	for _, e := range entries {
		if e.Name == "..data" && e.Stat.Size != int64(len(configMapVersion)) {
			t.Errorf("..data has the stat of what it points to, not its own: %+v", e.Stat)
		}
	}
	if entries, _, err := list("/etc/config/..data"); err != nil || len(entries) != 1 || entries[0].Name != "app.yaml" || fileType(entries[0].Stat) != syscall.S_IFREG {
		t.Errorf("listing through ..data: %+v, %v", entries, err)
	}
	if entries, _, err := list("/srv/empty"); err != nil || len(entries) != 0 {
		t.Errorf("an empty directory: %+v, %v", entries, err)
	}
	if entries, _, err := list("/etc/root-link"); err != nil || !slices.ContainsFunc(entries, func(e wire.DirEntry) bool { return e.Name == "srv" }) {
		t.Errorf("a link to / lists the target's root: %+v, %v", entries, err)
	}

	many := filepath.Join(root, "srv", "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 1000 {
		name := fmt.Sprintf("..%04d_%s", i, strings.Repeat("n", 200))
		names = append(names, name)
		if err := os.WriteFile(filepath.Join(many, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries, replies, err := list("/srv/many")
	if err != nil {
		t.Fatal(err)
	}
	var gotNames []string
	for _, e := range entries {
		gotNames = append(gotNames, e.Name)
	}
	slices.Sort(gotNames)
	if !slices.Equal(gotNames, names) || replies < 3 {
		t.Errorf("%d entries in %d replies, want the %d made, in several", len(entries), replies, len(names))
	}

	for path, want := range map[string]syscall.Errno{
		"/srv/data.txt":  syscall.ENOTDIR,
		"/srv/missing":   syscall.ENOENT,
		"/etc/out-abs":   syscall.ENOENT,
		"/etc/out-up":    syscall.ENOENT,
		"/etc/loop":      syscall.ELOOP,
		"srv":            syscall.EINVAL,
		"/srv/dir/../..": syscall.EINVAL,
	} {
		if _, _, err := list(path); !errors.Is(err, want) {
			t.Errorf("readdir %q: %v, want %v", path, err, want)
		}
	}
}

func TestFSReadDirOverTheBound(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	const limit = 10
	dir := filepath.Join(root, "srv", "huge")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range limit {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var roots targetRootCache
	rootDir, err := roots.open(t.Context(), procRoot, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(rootDir)
	if entries, err := readDirIn(rootDir, "/srv/huge", limit); err != nil || len(entries) != limit {
		t.Fatalf("a directory at the bound: %d entries, %v", len(entries), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "one-more"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readDirIn(rootDir, "/srv/huge", limit); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("a directory over the bound: %v, want EFBIG", err)
	}
}

func maps(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFSReadLink(t *testing.T) {
	procRoot, _, outside := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot}, slog.New(slog.DiscardHandler))
	readLink := func(path string) (string, error) {
		replies, err := fsDo(t, srv, wire.FSRequest{Op: wire.FSReadLink, Path: path})
		if err != nil {
			return "", err
		}
		return replies[0].Target, nil
	}
	for path, want := range map[string]string{
		"/etc/config/..data":      configMapVersion,
		"/etc/config/app.yaml":    "..data/app.yaml",
		"/etc/abs-link":           "/srv/data.txt",
		"/etc/out-abs":            outside, // the link as it is, not where it leads
		"/etc/root-link/etc/loop": "/etc/loop",
	} {
		if got, err := readLink(path); err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", path, got, err, want)
		}
	}
	for path, want := range map[string]syscall.Errno{
		"/srv/data.txt": syscall.EINVAL,
		"/":             syscall.EINVAL,
		"/srv/missing":  syscall.ENOENT,
		"/etc/loop/x":   syscall.ELOOP,
		"etc/loop":      syscall.EINVAL,
	} {
		if _, err := readLink(path); !errors.Is(err, want) {
			t.Errorf("readlink %q: %v, want %v", path, err, want)
		}
	}
}

func TestFSRead(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot, MaxFile: 300 << 10}, slog.New(slog.DiscardHandler))
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	if err := os.WriteFile(filepath.Join(root, "srv", "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	read := func(path string, size int64) ([]byte, wire.FileStat, int, error) {
		t.Helper()
		replies, err := fsDo(t, srv, wire.FSRequest{Op: wire.FSRead, Path: path, Size: size})
		if err != nil {
			return nil, wire.FileStat{}, 0, err
		}
		var data []byte
		for _, r := range replies {
			data = append(data, r.Data...)
		}
		return data, replies[0].Stat, len(replies), nil
	}
	data, st, replies, err := read("/srv/big", 0)
	if err != nil || !bytes.Equal(data, big) {
		t.Fatalf("%d bytes, %v; want the %d written", len(data), err, len(big))
	}
	if want := (len(big) + wire.MaxFSChunk - 1) / wire.MaxFSChunk; replies != want {
		t.Errorf("%d replies, want %d", replies, want)
	}
	if st.Size != int64(len(big)) || st.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("the first reply's stat: %+v", st)
	}
	for _, path := range []string{"/etc/config/app.yaml", "/etc/root-link/etc/config/..data/app.yaml"} {
		if data, st, _, err := read(path, 0); err != nil || string(data) != "key: value\n" || st.Size != int64(len(data)) {
			t.Errorf("%s: %q, %+v, %v", path, data, st, err)
		}
	}
	if data, st, replies, err := read("/srv/missing", 0); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("a missing file: %q, %+v, %d, %v", data, st, replies, err)
	}
	start := time.Now()
	if data, st, _, err := read("/srv/fifo", 0); err != nil || len(data) != 0 || fileType(st) != syscall.S_IFIFO {
		t.Errorf("a fifo without a writer: %q, %+v, %v", data, st, err)
	}
	if took := time.Since(start); took > fileReadTimeout/2 {
		t.Errorf("the fifo took %s", took)
	}
	if _, _, _, err := read("/srv/big", int64(len(big))); err != nil {
		t.Errorf("a file exactly at the client's limit: %v", err)
	}
	for _, size := range []int64{int64(len(big)) - 1, 1} {
		if _, _, _, err := read("/srv/big", size); !errors.Is(err, syscall.EFBIG) {
			t.Errorf("a client's limit of %d: %v, want EFBIG", size, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "srv", "huge"), make([]byte, 300<<10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := read("/srv/huge", 1<<30); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("over the sidecar's bound: %v, want EFBIG", err)
	}
	for path, want := range map[string]syscall.Errno{
		"/srv":                  syscall.EISDIR,
		"/etc/loop":             syscall.ELOOP,
		"/etc/out-abs/secret":   syscall.ENOENT,
		"/etc/out-up/secret":    syscall.ENOENT,
		"/srv/secret-elsewhere": syscall.ENOENT,
		"/srv/../etc":           syscall.EINVAL,
	} {
		if _, _, _, err := read(path, 0); !errors.Is(err, want) {
			t.Errorf("read %q: %v, want %v", path, err, want)
		}
	}
}

func TestFSWrite(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot}, slog.New(slog.DiscardHandler))
	write := func(path string, data string, mode uint32) (wire.FileStat, error) {
		t.Helper()
		return fsStat(t, srv, wire.FSRequest{Op: wire.FSWrite, Path: path, Data: []byte(data), Mode: mode})
	}
	content := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// 0666 is more than the umask lets a creat make: the bits asked for are the bits set.
	st, err := write("/srv/new", "hello", 0o666)
	if err != nil || st.Mode != syscall.S_IFREG|0o666 || st.Size != 5 || content("/srv/new") != "hello" {
		t.Fatalf("a new file: %+v, %v, %q", st, err, content("/srv/new"))
	}
	if err := os.Chmod(filepath.Join(root, "srv", "new"), 0o640); err != nil {
		t.Fatal(err)
	}
	if st, err := write("/srv/new", "hi", 0); err != nil || st.Mode != syscall.S_IFREG|0o640 || st.Size != 2 || content("/srv/new") != "hi" {
		t.Errorf("mode 0 keeps the bits and truncates: %+v, %v, %q", st, err, content("/srv/new"))
	}
	if st, err := write("/srv/new", "", 0o4711); err != nil || st.Mode != syscall.S_IFREG|0o4711 || st.Size != 0 {
		t.Errorf("an empty write with new bits: %+v, %v", st, err)
	}
	if st, err := write("/srv/fresh", "x", 0); err != nil || st.Mode&0o777 != 0o644 {
		t.Errorf("a new file without bits: %+v, %v", st, err)
	}
	if _, err := write("/etc/config/app.yaml", "through a link", 0o644); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("a write to a symlink: %v, want ELOOP (the client resolves links)", err)
	}
	if content("/etc/config/app.yaml") != "key: value\n" {
		t.Errorf("the write went through the link")
	}
	if _, err := write("/etc/config/..data/app.yaml", "new: value\n", 0); err != nil || content("/etc/config/app.yaml") != "new: value\n" {
		t.Errorf("a write through a link to a directory: %v, %q", err, content("/etc/config/app.yaml"))
	}
	for path, want := range map[string]syscall.Errno{
		"/srv/dir":              syscall.EISDIR,
		"/":                     syscall.EISDIR,
		"/srv/missing/x":        syscall.ENOENT,
		"/srv/data.txt/x":       syscall.ENOTDIR,
		"/etc/out-abs/planted":  syscall.ENOENT, // never in the directory outside
		"/etc/out-up/planted":   syscall.ENOENT,
		"/srv/secret-elsewhere": syscall.ELOOP,
		"/etc/loop/x":           syscall.ELOOP,
		"srv/x":                 syscall.EINVAL,
		"/srv/dir/../../x":      syscall.EINVAL,
		"/srv/fifo":             syscall.ENXIO, // no reader: refused, not waited for
	} {
		if _, err := write(path, "planted", 0o644); !errors.Is(err, want) {
			t.Errorf("write %q: %v, want %v", path, err, want)
		}
	}
}

func TestFSMkdirRemoveRenameSymlink(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot}, slog.New(slog.DiscardHandler))
	do := func(req wire.FSRequest) (wire.FileStat, error) {
		t.Helper()
		return fsStat(t, srv, req)
	}
	exists := func(path string) bool {
		_, err := os.Lstat(filepath.Join(root, path))
		return err == nil
	}

	if st, err := do(wire.FSRequest{Op: wire.FSMkdir, Path: "/srv/made", Mode: 0o777}); err != nil || st.Mode != syscall.S_IFDIR|0o777 {
		t.Errorf("mkdir: %+v, %v; want the bits asked for, whatever the umask", st, err)
	}
	if st, err := do(wire.FSRequest{Op: wire.FSMkdir, Path: "/srv/made/sub/", Mode: 0o700}); err != nil || st.Mode != syscall.S_IFDIR|0o700 || !exists("/srv/made/sub") {
		t.Errorf("mkdir with a trailing slash: %+v, %v", st, err)
	}
	if st, err := do(wire.FSRequest{Op: wire.FSSymlink, Path: "/srv/made/link", Path2: "../../etc/config"}); err != nil || fileType(st) != syscall.S_IFLNK || st.Size != int64(len("../../etc/config")) {
		t.Errorf("symlink: %+v, %v", st, err)
	}
	if st, err := do(wire.FSRequest{Op: wire.FSStat, Path: "/srv/made/link/app.yaml"}); err != nil || st.Size != int64(len("key: value\n")) {
		t.Errorf("through the new link: %+v, %v", st, err)
	}
	if _, err := do(wire.FSRequest{Op: wire.FSRename, Path: "/srv/made/link", Path2: "/srv/renamed-link"}); err != nil || !exists("/srv/renamed-link") || exists("/srv/made/link") {
		t.Errorf("rename: %v", err)
	}
	if _, err := do(wire.FSRequest{Op: wire.FSRemove, Path: "/srv/renamed-link"}); err != nil || exists("/srv/renamed-link") || !exists("/etc/config/app.yaml") {
		t.Errorf("remove of a link removes the link only: %v", err)
	}
	if _, err := do(wire.FSRequest{Op: wire.FSRemove, Path: "/srv/made/sub", Flags: wire.FSRemoveDir}); err != nil || exists("/srv/made/sub") {
		t.Errorf("rmdir: %v", err)
	}
	if _, err := do(wire.FSRequest{Op: wire.FSRename, Path: "/srv/data.txt", Path2: "/srv/dir/file"}); err != nil || !exists("/srv/dir/file") || exists("/srv/data.txt") {
		t.Errorf("rename over a file: %v", err)
	}

	failures := []struct {
		req  wire.FSRequest
		want syscall.Errno
	}{
		{wire.FSRequest{Op: wire.FSMkdir, Path: "/srv/dir", Mode: 0o755}, syscall.EEXIST},
		{wire.FSRequest{Op: wire.FSMkdir, Path: "/", Mode: 0o755}, syscall.EEXIST},
		{wire.FSRequest{Op: wire.FSMkdir, Path: "/srv/missing/x", Mode: 0o755}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSMkdir, Path: "/etc/out-abs/planted", Mode: 0o755}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSMkdir, Path: "/etc/out-up/planted", Mode: 0o755}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSRemove, Path: "/srv/dir"}, syscall.EISDIR},
		{wire.FSRequest{Op: wire.FSRemove, Path: "/srv/dir", Flags: wire.FSRemoveDir}, syscall.ENOTEMPTY},
		{wire.FSRequest{Op: wire.FSRemove, Path: "/srv/dir/file", Flags: wire.FSRemoveDir}, syscall.ENOTDIR},
		{wire.FSRequest{Op: wire.FSRemove, Path: "/srv/missing"}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSRemove, Path: "/etc/out-abs/secret"}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSRemove, Path: "/srv/dir", Flags: 2}, syscall.EINVAL},
		{wire.FSRequest{Op: wire.FSRename, Path: "/srv/missing", Path2: "/srv/x"}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSRename, Path: "/srv/empty", Path2: "/srv/dir"}, syscall.ENOTEMPTY},
		{wire.FSRequest{Op: wire.FSRename, Path: "/srv/dir", Path2: "/srv/dir/sub/x"}, syscall.EINVAL},
		{wire.FSRequest{Op: wire.FSRename, Path: "/srv/empty", Path2: "/srv/../x"}, syscall.EINVAL},
		{wire.FSRequest{Op: wire.FSRename, Path: "/srv/empty", Path2: "x"}, syscall.EINVAL},
		{wire.FSRequest{Op: wire.FSRename, Path: "/srv/empty", Path2: "/etc/out-abs/planted"}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSSymlink, Path: "/srv/dir", Path2: "/x"}, syscall.EEXIST},
		{wire.FSRequest{Op: wire.FSSymlink, Path: "/etc/out-up/planted", Path2: "/x"}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSSymlink, Path: "/srv/empty-target", Path2: ""}, syscall.ENOENT},
		{wire.FSRequest{Op: wire.FSLstat, Path: "/srv", Flags: wire.FSRemoveDir}, syscall.EINVAL},
		{wire.FSRequest{Op: 200, Path: "/srv"}, syscall.ENOSYS},
	}
	for _, f := range failures {
		if _, err := do(f.req); !errors.Is(err, f.want) {
			t.Errorf("%s %q %q: %v, want %v", f.req.Op, f.req.Path, f.req.Path2, err, f.want)
		}
	}
	if _, err := do(wire.FSRequest{Op: wire.FSRename, Path: "/srv/missing", Path2: "/srv/x"}); err == nil || err.Error() != "rename /srv/missing /srv/x: no such file or directory" {
		t.Errorf("a rename's reason names both paths: %v", err)
	}
}

// fsCall runs a request on a stream of its own, as the plugin does, and gathers the replies;
// data beyond the first chunk goes in more requests. A failure the sidecar reports is its errno;
// anything else going wrong, an end of the stream other than right after the last reply
// included, is another error. It is safe to call from any goroutine.
func fsCall(ctx context.Context, conn *quic.Conn, req wire.FSRequest) ([]wire.FSReply, error) {
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	data := req.Data
	for first := true; first || len(data) > 0; first = false {
		chunk := data[:min(len(data), wire.MaxFSChunk)]
		data = data[len(chunk):]
		frame := wire.FSRequest{Op: req.Op, Data: chunk, More: len(data) > 0}
		if first {
			frame.Path, frame.Path2, frame.Mode, frame.Flags, frame.Size = req.Path, req.Path2, req.Mode, req.Flags, req.Size
		}
		if err := wire.WriteMessage(stream, frame); err != nil {
			break // the sidecar stopped reading: its answer says why
		}
	}
	_ = stream.Close()
	r := wire.NewReader(stream)
	var replies []wire.FSReply
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Op, req.Path, err)
		}
		reply, ok := msg.(wire.FSReply)
		if !ok {
			return nil, fmt.Errorf("%s %s: reply %#v", req.Op, req.Path, msg)
		}
		if err := reply.Err(); err != nil {
			if reply.More || len(replies) > 0 {
				return nil, fmt.Errorf("%s %s: a failure amid an answer: %#v", req.Op, req.Path, reply)
			}
			return nil, err
		}
		replies = append(replies, reply)
		if !reply.More {
			break
		}
	}
	if msg, err := r.ReadMessage(); err != io.EOF {
		return nil, fmt.Errorf("%s %s: after the last reply %#v, %v; want the end of the stream", req.Op, req.Path, msg, err)
	}
	return replies, nil
}

// TestServerFS: each operation on a stream of its own through a real connection, writes in many
// requests, answers in many replies, and no operation waiting on another.
func TestServerFS(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, procRoot, func(c *Config) { c.MaxFile = 300 << 10 })
	conn := dialSidecar(t, client, port, pin)

	t.Run("the feature is offered", func(t *testing.T) {
		control, err := conn.OpenStreamSync(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer control.Close()
		if err := wire.WriteMessage(control, wire.Hello{Version: wire.Version, Features: []string{wire.FeatureFS}}); err != nil {
			t.Fatal(err)
		}
		msg, err := wire.NewReader(control).ReadMessage()
		if hello, ok := msg.(wire.HelloReply); err != nil || !ok || !slices.Equal(hello.Features, []string{wire.FeatureFS}) {
			t.Fatalf("hello reply = %#v, %v; want %s negotiated", msg, err, wire.FeatureFS)
		}
	})
	t.Run("write in chunks, read back in chunks", func(t *testing.T) {
		content := bytes.Repeat([]byte("remocal!"), 250<<10/8) // 250 KiB: five chunks
		replies, err := fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSWrite, Path: "/srv/uploaded", Mode: 0o600, Data: content})
		if err != nil || len(replies) != 1 || replies[0].Stat.Size != int64(len(content)) || replies[0].Stat.Mode != syscall.S_IFREG|0o600 {
			t.Fatalf("write: %+v, %v", replies, err)
		}
		if onDisk, err := os.ReadFile(filepath.Join(root, "srv", "uploaded")); err != nil || !bytes.Equal(onDisk, content) {
			t.Fatalf("on disk: %d bytes, %v", len(onDisk), err)
		}
		replies, err = fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSRead, Path: "/srv/uploaded"})
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		for _, r := range replies {
			data = append(data, r.Data...)
		}
		if !bytes.Equal(data, content) || len(replies) != 5 || replies[0].Stat.Size != int64(len(content)) {
			t.Fatalf("read: %d bytes in %d replies, stat %+v", len(data), len(replies), replies[0].Stat)
		}
	})
	t.Run("a write over the bound is refused before its end", func(t *testing.T) {
		_, err := fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSWrite, Path: "/srv/too-big", Data: make([]byte, 4<<20)})
		if !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("%v, want EFBIG", err)
		}
		if _, err := os.Stat(filepath.Join(root, "srv", "too-big")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the refused write made the file: %v", err)
		}
	})
	t.Run("a listing in many replies", func(t *testing.T) {
		dir := filepath.Join(root, "srv", "listing")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 600 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d-%s", i, strings.Repeat("f", 200))), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		replies, err := fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSReadDir, Path: "/srv/listing"})
		entries := 0
		for _, r := range replies {
			entries += len(r.Entries)
		}
		if err != nil || entries != 600 || len(replies) < 2 {
			t.Fatalf("%d entries in %d replies, %v", entries, len(replies), err)
		}
	})
	t.Run("errno", func(t *testing.T) {
		for _, tt := range []struct {
			req  wire.FSRequest
			want syscall.Errno
		}{
			{wire.FSRequest{Op: wire.FSLstat, Path: "/etc/missing"}, syscall.ENOENT},
			{wire.FSRequest{Op: wire.FSRemove, Path: "/srv/dir", Flags: wire.FSRemoveDir}, syscall.ENOTEMPTY},
			{wire.FSRequest{Op: wire.FSMkdir, Path: "/srv/dir"}, syscall.EEXIST},
			{wire.FSRequest{Op: wire.FSRead, Path: "/etc"}, syscall.EISDIR},
			{wire.FSRequest{Op: wire.FSStat, Path: "/etc/loop"}, syscall.ELOOP},
			{wire.FSRequest{Op: wire.FSReadDir, Path: "/srv/dir/file"}, syscall.ENOTDIR},
		} {
			if _, err := fsCall(t.Context(), conn, tt.req); !errors.Is(err, tt.want) {
				t.Errorf("%s %s: %v, want %v", tt.req.Op, tt.req.Path, err, tt.want)
			}
		}
	})
	t.Run("operations do not wait on one another", func(t *testing.T) {
		if testing.Short() {
			t.Skipf("waits %s", fileReadTimeout)
		}
		w, err := os.OpenFile(filepath.Join(root, "srv", "fifo"), os.O_RDWR, 0) // a writer that never writes
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		stuck := make(chan error, 1)
		go func() {
			_, err := fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSRead, Path: "/srv/fifo"})
			stuck <- err
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSLstat, Path: "/srv/data.txt"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if took := time.Since(start); took > fileReadTimeout/2 {
			t.Errorf("16 lstats behind a silent fifo took %s", took)
		}
		if err := <-stuck; !errors.Is(err, syscall.ETIMEDOUT) {
			t.Errorf("the fifo read: %v, want ETIMEDOUT", err)
		}
	})
	t.Run("broken requests close only their stream", func(t *testing.T) {
		for name, frames := range map[string][]wire.Message{
			"more on a lstat":          {wire.FSRequest{Op: wire.FSLstat, Path: "/srv", More: true}},
			"a lstat amid a write":     {wire.FSRequest{Op: wire.FSWrite, Path: "/srv/x", More: true}, wire.FSRequest{Op: wire.FSLstat, Path: "/srv"}},
			"a path amid a write":      {wire.FSRequest{Op: wire.FSWrite, Path: "/srv/x", More: true}, wire.FSRequest{Op: wire.FSWrite, Path: "/srv/y"}},
			"a heartbeat amid a write": {wire.FSRequest{Op: wire.FSWrite, Path: "/srv/x", More: true}, wire.Heartbeat{Seq: 1}},
		} {
			stream, err := conn.OpenStreamSync(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				if err := wire.WriteMessage(stream, f); err != nil {
					t.Fatal(err)
				}
			}
			msg, err := wire.NewReader(stream).ReadMessage()
			if e, ok := msg.(wire.Error); err != nil || !ok || e.Code != wire.ErrCodeProtocol {
				t.Errorf("%s: %#v, %v; want a protocol error", name, msg, err)
			}
			stream.CancelWrite(0)
		}
		if _, err := os.Lstat(filepath.Join(root, "srv", "x")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a broken write made its file: %v", err)
		}
		if _, err := fsCall(t.Context(), conn, wire.FSRequest{Op: wire.FSLstat, Path: "/srv"}); err != nil {
			t.Errorf("the connection after: %v", err)
		}
	})
}

// TestServerEndsFSStreams: every answer ends its stream both ways even when the client leaves
// its side open, so that operations cannot use up the connection's stream limit.
func TestServerEndsFSStreams(t *testing.T) {
	const limit = 4
	procRoot, _, _ := fsTarget(t)
	ctx, conn := serveWithStreamLimit(t, Config{ProcRoot: procRoot}, limit)
	for i := range 3 * limit {
		req := wire.FSRequest{Op: wire.FSLstat, Path: "/srv"}
		if i%2 == 1 {
			req = wire.FSRequest{Op: wire.FSLstat, Path: "/srv/missing"}
		}
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		stream, err := conn.OpenStreamSync(octx)
		ocancel()
		if err != nil {
			t.Fatalf("operation %d with a limit of %d streams: %v", i, limit, err)
		}
		// As a careless client would: read the answer, leave the stream as it is.
		if err := wire.WriteMessage(stream, req); err != nil {
			t.Fatal(err)
		}
		if msg, err := wire.NewReader(stream).ReadMessage(); err != nil {
			t.Fatalf("operation %d: %#v, %v", i, msg, err)
		}
	}
}
