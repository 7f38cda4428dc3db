package sidecarclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// fsFeatures are those of a sidecar that serves the pod's files.
func fsFeatures() []string { return []string{wire.FeatureReadFile, wire.FeatureFS} }

// fsRequest is one operation as the fake sidecar received it: the first request, and the data
// of all of them.
type fsRequest struct {
	req  wire.FSRequest
	data []byte
}

// fsSidecar is a fake sidecar whose filesystem streams get answer's replies, sent as they are,
// after it has gathered a write's data. It checks what the sidecar relies on: a write's later
// requests carry only data, and the client ends its side after the request.
func fsSidecar(t *testing.T, answer func(req fsRequest) []wire.FSReply) *Session {
	t.Helper()
	return fakeSidecar{
		features: fsFeatures(),
		fs: func(stream *quic.Stream, r *wire.Reader, first wire.FSRequest) {
			req := fsRequest{req: first, data: first.Data}
			for more := first.More; more; {
				msg, err := r.ReadMessage()
				if err != nil {
					t.Errorf("%s %s: the data of a write: %v", first.Op, first.Path, err)
					return
				}
				next, ok := msg.(wire.FSRequest)
				if !ok || next.Op != wire.FSWrite || next.Path != "" || next.Mode != 0 {
					t.Errorf("%s %s: %#v amid the data of a write", first.Op, first.Path, msg)
				}
				req.data, more = append(req.data, next.Data...), next.More
			}
			req.req.Data, req.req.More = nil, false
			if msg, err := r.ReadMessage(); err != io.EOF {
				t.Errorf("%s %s: after the request %#v, %v; want the client's end of its side", first.Op, first.Path, msg, err)
			}
			for _, reply := range answer(req) {
				if wire.WriteMessage(stream, reply) != nil {
					return
				}
			}
			_ = stream.Close()
		},
	}.session(t)
}

// fileStat is a regular file's stat of size bytes.
func fileStat(size int) wire.FileStat {
	return wire.FileStat{Mode: syscall.S_IFREG | 0o644, Size: int64(size), Ino: 42, Nlink: 1, Mtime: 1700000000000000000}
}

func TestSessionFS(t *testing.T) {
	var listing []wire.DirEntry
	for i := range 2000 {
		listing = append(listing, wire.DirEntry{Name: fmt.Sprintf("..%04d_%s", i, strings.Repeat("n", 60)), Stat: fileStat(i)})
	}
	content := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // four chunks
	var mu sync.Mutex
	got := map[wire.FSOp]fsRequest{}
	s := fsSidecar(t, func(req fsRequest) []wire.FSReply {
		mu.Lock()
		got[req.req.Op] = req
		mu.Unlock()
		switch req.req.Op {
		case wire.FSLstat:
			return []wire.FSReply{{Stat: wire.FileStat{Mode: syscall.S_IFLNK | 0o777, Size: 6}}}
		case wire.FSStat, wire.FSMkdir:
			return []wire.FSReply{{Stat: wire.FileStat{Mode: syscall.S_IFDIR | req.req.Mode, Nlink: 2}}}
		case wire.FSReadDir:
			replies, err := wire.SplitDirEntries(listing)
			if err != nil {
				t.Error(err)
			}
			return replies
		case wire.FSReadLink:
			return []wire.FSReply{{Target: "..data/app.yaml"}}
		case wire.FSRead:
			var replies []wire.FSReply
			for data := content; len(data) > 0; {
				chunk := data[:min(len(data), wire.MaxFSChunk)]
				data = data[len(chunk):]
				replies = append(replies, wire.FSReply{Data: chunk, More: len(data) > 0})
			}
			replies[0].Stat = fileStat(len(content))
			return replies
		case wire.FSWrite:
			return []wire.FSReply{{Stat: fileStat(len(req.data))}}
		case wire.FSSymlink:
			return []wire.FSReply{{Stat: wire.FileStat{Mode: syscall.S_IFLNK | 0o777, Size: int64(len(req.req.Path2))}}}
		}
		return []wire.FSReply{{}}
	})
	ctx := t.Context()
	request := func(op wire.FSOp) fsRequest {
		mu.Lock()
		defer mu.Unlock()
		return got[op]
	}

	if st, err := s.Lstat(ctx, "/etc/config/..data"); err != nil || st.Mode != syscall.S_IFLNK|0o777 || !reflect.DeepEqual(request(wire.FSLstat).req, wire.FSRequest{Op: wire.FSLstat, Path: "/etc/config/..data"}) {
		t.Errorf("Lstat = %+v, %v; the sidecar got %+v", st, err, request(wire.FSLstat))
	}
	if st, err := s.Stat(ctx, "/etc/config"); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR || request(wire.FSStat).req.Path != "/etc/config" {
		t.Errorf("Stat = %+v, %v", st, err)
	}
	entries, err := s.ReadDir(ctx, "/etc/config")
	if err != nil || len(entries) != len(listing) || entries[1999] != listing[1999] || request(wire.FSReadDir).req.Path != "/etc/config" {
		t.Errorf("ReadDir = %d entries, %v; want the %d sent", len(entries), err, len(listing))
	}
	if target, err := s.ReadLink(ctx, "/etc/config/app.yaml"); err != nil || target != "..data/app.yaml" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	data, st, err := s.ReadFileLimit(ctx, "/srv/big", 1<<20)
	if err != nil || !bytes.Equal(data, content) || st != fileStat(len(content)) {
		t.Errorf("ReadFileLimit = %d bytes, %+v, %v; want the %d sent and the first reply's stat", len(data), st, err, len(content))
	}
	if req := request(wire.FSRead).req; req.Size != 1<<20 || req.Path != "/srv/big" {
		t.Errorf("the read asked for %+v", req)
	}
	for limit, sent := range map[int64]int64{0: wire.MaxFileSize, -1: wire.MaxFileSize, 1 << 40: wire.MaxFileSize, int64(len(content)): int64(len(content))} {
		if _, _, err := s.ReadFileLimit(ctx, "/srv/big", limit); err != nil || request(wire.FSRead).req.Size != sent {
			t.Errorf("ReadFileLimit with a limit of %d: %v, asked for %d; want %d", limit, err, request(wire.FSRead).req.Size, sent)
		}
	}
	for _, size := range []int{0, 10, 3*wire.MaxFSChunk + 7} {
		written := bytes.Repeat([]byte{'w'}, size)
		st, err := s.WriteFile(ctx, "/srv/out", written, 0o640)
		if req := request(wire.FSWrite); err != nil || st.Size != int64(size) || !bytes.Equal(req.data, written) ||
			!reflect.DeepEqual(req.req, wire.FSRequest{Op: wire.FSWrite, Path: "/srv/out", Mode: 0o640}) {
			t.Errorf("WriteFile of %d bytes = %+v, %v; the sidecar got %+v and %d bytes", size, st, err, req.req, len(req.data))
		}
	}
	if st, err := s.Mkdir(ctx, "/srv/new", 0o750); err != nil || st.Mode != syscall.S_IFDIR|0o750 || request(wire.FSMkdir).req.Mode != 0o750 {
		t.Errorf("Mkdir = %+v, %v", st, err)
	}
	if err := s.Remove(ctx, "/srv/file", false); err != nil || !reflect.DeepEqual(request(wire.FSRemove).req, wire.FSRequest{Op: wire.FSRemove, Path: "/srv/file"}) {
		t.Errorf("Remove = %v; the sidecar got %+v", err, request(wire.FSRemove).req)
	}
	if err := s.Remove(ctx, "/srv/dir", true); err != nil || !reflect.DeepEqual(request(wire.FSRemove).req, wire.FSRequest{Op: wire.FSRemove, Path: "/srv/dir", Flags: wire.FSRemoveDir}) {
		t.Errorf("Remove of a directory = %v; the sidecar got %+v", err, request(wire.FSRemove).req)
	}
	if err := s.Rename(ctx, "/srv/a", "/srv/b"); err != nil || !reflect.DeepEqual(request(wire.FSRename).req, wire.FSRequest{Op: wire.FSRename, Path: "/srv/a", Path2: "/srv/b"}) {
		t.Errorf("Rename = %v; the sidecar got %+v", err, request(wire.FSRename).req)
	}
	if st, err := s.Symlink(ctx, "../etc/config", "/srv/link"); err != nil || st.Size != int64(len("../etc/config")) ||
		!reflect.DeepEqual(request(wire.FSSymlink).req, wire.FSRequest{Op: wire.FSSymlink, Path: "/srv/link", Path2: "../etc/config"}) {
		t.Errorf("Symlink = %+v, %v; the sidecar got %+v", st, err, request(wire.FSSymlink).req)
	}
}

// TestSessionFSErrno: every operation's failure in the pod comes back with its errno, and says
// nothing of connecting.
func TestSessionFSErrno(t *testing.T) {
	errnos := map[string]syscall.Errno{
		"/missing":  syscall.ENOENT,
		"/secret":   syscall.EACCES,
		"/dir":      syscall.EISDIR,
		"/file/x":   syscall.ENOTDIR,
		"/full":     syscall.ENOTEMPTY,
		"/exists":   syscall.EEXIST,
		"/loop":     syscall.ELOOP,
		"/ro":       syscall.EROFS,
		"/huge":     syscall.EFBIG,
		"relative":  syscall.EINVAL,
		"/other-fs": syscall.EXDEV,
	}
	s := fsSidecar(t, func(req fsRequest) []wire.FSReply {
		errno := errnos[req.req.Path]
		return []wire.FSReply{{Errno: wire.ErrnoOf(errno), Reason: req.req.Op.String() + " " + req.req.Path + ": " + errno.Error()}}
	})
	ctx := t.Context()
	ops := map[string]func(path string) error{
		"Lstat":         func(p string) error { _, err := s.Lstat(ctx, p); return err },
		"Stat":          func(p string) error { _, err := s.Stat(ctx, p); return err },
		"ReadDir":       func(p string) error { _, err := s.ReadDir(ctx, p); return err },
		"ReadLink":      func(p string) error { _, err := s.ReadLink(ctx, p); return err },
		"ReadFileLimit": func(p string) error { _, _, err := s.ReadFileLimit(ctx, p, 0); return err },
		"WriteFile":     func(p string) error { _, err := s.WriteFile(ctx, p, []byte("x"), 0); return err },
		"Mkdir":         func(p string) error { _, err := s.Mkdir(ctx, p, 0o755); return err },
		"Remove":        func(p string) error { return s.Remove(ctx, p, true) },
		"Rename":        func(p string) error { return s.Rename(ctx, p, "/elsewhere") },
		"Symlink":       func(p string) error { _, err := s.Symlink(ctx, "/target", p); return err },
	}
	for name, op := range ops {
		for path, want := range errnos {
			err := op(path)
			if !errors.Is(err, want) {
				t.Errorf("%s(%q) = %v, want %v", name, path, err, want)
			}
			if err != nil && (strings.Contains(err.Error(), "dial") || strings.Contains(err.Error(), "connect")) {
				t.Errorf("%s(%q) = %q, which speaks of connecting", name, path, err)
			}
		}
	}
	if err := ops["Lstat"]("/missing"); err == nil || err.Error() != "lstat /missing in the pod: lstat /missing: no such file or directory" {
		t.Errorf("Lstat error reads %q", err)
	}
}

// TestSessionFSBounds: a sidecar that sends more than asked for, or answers without end, gets an
// error, not our memory or our time.
func TestSessionFSBounds(t *testing.T) {
	entries := make([]wire.DirEntry, 800)
	for i := range entries {
		entries[i] = wire.DirEntry{Name: fmt.Sprint(i)}
	}
	s := fsSidecar(t, func(req fsRequest) []wire.FSReply {
		switch req.req.Path {
		case "/too-much":
			return []wire.FSReply{{Data: make([]byte, 101)}}
		case "/endless-read":
			return slicesRepeat(wire.FSReply{Data: make([]byte, wire.MaxFSChunk), More: true}, wire.MaxFileSize/wire.MaxFSChunk+2)
		case "/endless-listing":
			return slicesRepeat(wire.FSReply{Entries: entries, More: true}, wire.MaxDirEntries/len(entries)+2)
		case "/empty-more":
			return slicesRepeat(wire.FSReply{More: true}, 3)
		case "/refused":
			return nil // and an Error below
		}
		return []wire.FSReply{{More: true}, {}}
	})
	ctx := t.Context()
	if _, _, err := s.ReadFileLimit(ctx, "/too-much", 100); err == nil || !strings.Contains(err.Error(), "over the 100 bytes asked for") {
		t.Errorf("a reply over the limit: %v", err)
	}
	if _, _, err := s.ReadFileLimit(ctx, "/endless-read", 0); err == nil || !strings.Contains(err.Error(), "asked for") {
		t.Errorf("a read without end: %v", err)
	}
	if _, err := s.ReadDir(ctx, "/endless-listing"); err == nil || !strings.Contains(err.Error(), "the most a listing may have") {
		t.Errorf("a listing without end: %v", err)
	}
	if _, err := s.ReadDir(ctx, "/empty-more"); !errors.Is(err, errEmptyReply) {
		t.Errorf("empty replies announcing more: %v", err)
	}
	if _, _, err := s.ReadFileLimit(ctx, "/empty-more", 0); !errors.Is(err, errEmptyReply) {
		t.Errorf("empty replies announcing more: %v", err)
	}
	if _, err := s.Lstat(ctx, "/two-replies"); err == nil || !strings.Contains(err.Error(), "more than one reply") {
		t.Errorf("a stat in two replies: %v", err)
	}
	// Over the bound, a write is refused here, before anything is sent.
	if _, err := s.WriteFile(ctx, "/big", make([]byte, wire.MaxFileSize+1), 0); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("a write over %d bytes: %v, want EFBIG", wire.MaxFileSize, err)
	}
}

func slicesRepeat(r wire.FSReply, n int) []wire.FSReply {
	replies := make([]wire.FSReply, n)
	for i := range replies {
		replies[i] = r
	}
	return replies
}

func TestSessionFSRefusals(t *testing.T) {
	s := fakeSidecar{
		features: fsFeatures(),
		fs: func(stream *quic.Stream, _ *wire.Reader, req wire.FSRequest) {
			if req.Op == wire.FSWrite {
				// As the sidecar refuses a write over its bound: an answer before the end of the
				// data, and no more of it read.
				_ = wire.WriteMessage(stream, wire.FSReply{Errno: wire.ErrnoOf(syscall.EFBIG), Reason: "write /big: over 1024 bytes: file too large"})
				stream.CancelRead(0)
				_ = stream.Close()
				return
			}
			_ = wire.WriteMessage(stream, wire.Error{Code: wire.ErrCodeProtocol, Reason: "unexpected"})
			stream.CancelRead(0)
			_ = stream.Close()
		},
	}.session(t)
	if _, err := s.WriteFile(t.Context(), "/big", make([]byte, 8<<20), 0); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("a write the sidecar refuses midway: %v, want EFBIG", err)
	}
	if _, err := s.Lstat(t.Context(), "/x"); !errors.Is(err, wire.Error{Code: wire.ErrCodeProtocol}) {
		t.Errorf("a request the sidecar refuses: %v", err)
	}
}

func TestSessionFSNeedsTheFeature(t *testing.T) {
	s := fakeSidecar{features: []string{wire.FeatureEnv, wire.FeatureReadFile}}.session(t)
	var missing *FeatureError
	if _, err := s.Lstat(t.Context(), "/etc/hosts"); !errors.As(err, &missing) || missing.Feature != wire.FeatureFS {
		t.Fatalf("Lstat from a sidecar without %s = %v, want a FeatureError", wire.FeatureFS, err)
	}
}

// TestSessionFSOperationsDoNotWait: an operation whose answer does not come holds up no other,
// and gives up with its context, ending its stream.
func TestSessionFSOperationsDoNotWait(t *testing.T) {
	ended := make(chan error, 1)
	s := fakeSidecar{
		features: fsFeatures(),
		fs: func(stream *quic.Stream, _ *wire.Reader, req wire.FSRequest) {
			if req.Path == "/fifo" {
				// Never answers. The client giving up stops its read, which ends our side.
				<-stream.Context().Done()
				ended <- context.Cause(stream.Context())
				return
			}
			_ = wire.WriteMessage(stream, wire.FSReply{Stat: fileStat(1)})
			_ = stream.Close()
		},
	}.session(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	stuck := make(chan error, 1)
	go func() {
		_, _, err := s.ReadFileLimit(ctx, "/fifo", 0)
		stuck <- err
	}()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := s.Lstat(t.Context(), "/etc/hosts"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-stuck:
		t.Fatalf("the stuck read returned before its deadline: %v", err)
	default:
	}
	select {
	case err := <-stuck:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the stuck read: %v, want its context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck read outlived its context")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck read left its stream open")
	}
}
