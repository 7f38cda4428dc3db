package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// fileReadTimeout bounds the wait for data from a file that can block: a FIFO or a terminal
// would hold the control stream, and every request queued behind it, for as long as it stays
// silent. Regular files never block and take no deadline.
const fileReadTimeout = 5 * time.Second

// sendFile answers a FileRequest: the file of the target container at path, read through the
// target process's root, in chunks. Failures are one reply with the errno the read got.
func (s *server) sendFile(ctx context.Context, stream *quic.Stream, path string) error {
	h := s.files.hold()
	defer h.release() // once sent: the stream has copied what it sends
	data, err := s.readTargetFile(ctx, path, h)
	if err != nil {
		return wire.WriteMessage(stream, wire.FileReply{Errno: wire.ErrnoOf(err), Reason: err.Error()})
	}
	for {
		chunk := data[:min(len(data), wire.MaxFileChunk)]
		data = data[len(chunk):]
		if err := wire.WriteMessage(stream, wire.FileReply{Data: chunk, More: len(data) > 0}); err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
	}
}

// maxFile is the largest file sent or written: Config.MaxFile, never more than a client
// accepts.
func (s *server) maxFile() int64 {
	if s.cfg.MaxFile > 0 && s.cfg.MaxFile < wire.MaxFileSize {
		return s.cfg.MaxFile
	}
	return wire.MaxFileSize
}

// readTargetFile reads the target's file at path, holding its content in h.
func (s *server) readTargetFile(ctx context.Context, path string, h *hold) ([]byte, error) {
	if err := checkTargetPath(path); err != nil {
		return nil, err
	}
	root, err := s.targetRoot(ctx)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	f, err := openInRoot(root, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(ctx, f, path, s.maxFile(), h)
}

// checkTargetPath refuses a path that is not absolute or has a ".." element: a request names a
// file of the target container, never one reached by climbing out of another.
func checkTargetPath(path string) error {
	if !filepath.IsAbs(path) || strings.Contains("/"+path+"/", "/../") {
		return fmt.Errorf("path %q: %w", path, syscall.EINVAL)
	}
	return nil
}

// targetRoot opens the target's root directory as the kernel shows it (its mount namespace,
// whatever our own is), to resolve paths in with openBeneath. The caller closes it.
func (s *server) targetRoot(ctx context.Context) (int, error) {
	pid, err := s.target.pid(s.cfg.ProcRoot)
	if err != nil {
		return -1, err
	}
	return s.roots.open(ctx, s.cfg.ProcRoot, pid)
}

// readBounded reads f to its end, refusing with EFBIG one larger than limit, and holding in h
// the buffer it reads into: the size a regular file's stat gives, grown as needed for a file
// that has none (a FIFO, most of /proc) or that grew meanwhile. A file that can block gets a
// deadline; a regular file takes none.
func readBounded(ctx context.Context, f *os.File, path string, limit int64, h *hold) ([]byte, error) {
	_ = f.SetReadDeadline(time.Now().Add(fileReadTimeout)) // os.ErrNoDeadline for a regular file
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = min(fi.Size(), limit)
	}
	// One byte more than the size, to see the end of the file without growing the buffer.
	var buf []byte
	grow := func(to int64) error {
		if err := h.take(ctx, to-int64(cap(buf))); err != nil {
			return err
		}
		buf = append(make([]byte, 0, to), buf...)
		return nil
	}
	if err := grow(min(max(size+1, 4<<10), limit+1)); err != nil {
		return nil, err
	}
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return nil, err
		case int64(len(buf)) > limit:
			return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, syscall.EFBIG)
		case len(buf) == cap(buf):
			if err := grow(min(2*int64(cap(buf)), limit+1)); err != nil {
				return nil, err
			}
		}
	}
}

// readFlags open a file of the target for reading. O_NONBLOCK keeps the open of a FIFO from
// waiting for a writer; reads then wait in the poller, where a deadline applies.
const readFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK

// openInRoot opens path (absolute) for reading as a process whose root is the directory root
// would: symlinks resolve inside root (openat2's RESOLVE_IN_ROOT), where a plain open through
// /proc/PID/root would follow an absolute one (/etc/localtime -> /usr/share/zoneinfo/...) into
// the sidecar's own filesystem. The file is named by path, so errors name the file the client
// asked for, not our view of it.
func openInRoot(root int, path string) (*os.File, error) {
	fd, err := openBeneath(root, path, readFlags, true)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openBeneath opens path (absolute) with flags as a process whose root is the directory dir
// would, and returns the bare errno on failure. With fallback, a kernel without openat2 (Linux
// before 5.6, or a seccomp profile older than openat2) gets the plain open, faithful but for
// absolute symlinks, which resolve in the sidecar's own filesystem: good enough to read, not to
// change anything.
func openBeneath(dir int, path string, flags int, fallback bool) (int, error) {
	fd, err := retryOpen(func() (int, error) {
		return unix.Openat2(dir, path, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_IN_ROOT})
	})
	if fallback && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM)) {
		fd, err = retryOpen(func() (int, error) { return unix.Openat(dir, "."+path, flags, 0) })
	}
	return fd, err
}

// retryOpen retries an open interrupted by a signal, and a few times one that openat2 refused
// because a rename raced with resolving a ".." (in a symlink's target) inside the root.
func retryOpen(open func() (int, error)) (int, error) {
	for races := 0; ; {
		fd, err := open()
		switch {
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN) && races < 3:
			races++
		default:
			return fd, err
		}
	}
}
