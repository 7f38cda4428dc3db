package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// serveFS answers an FSRequest, the first message of a stream of its own: one operation on the
// target container's files. A write's data comes first, in as many requests as it takes. Every
// answer ends the stream both ways, as a refused dial's does, so that neither its place in the
// connection's stream limit nor anything else outlives the operation.
func (s *server) serveFS(ctx context.Context, log *slog.Logger, stream *quic.Stream, r *wire.Reader, req wire.FSRequest) {
	// What the request reads or writes is held until the answer is sent.
	h := s.files.hold()
	defer h.release()
	var data []byte
	if req.Op == wire.FSWrite {
		var err error
		data, err = gatherWrite(ctx, r, req, s.maxFile(), h)
		if err != nil && !errors.Is(err, syscall.EFBIG) && !errors.Is(err, syscall.ENOMEM) {
			rejectStream(stream, err)
			return
		}
		if err != nil {
			// The answer comes before the rest of the data, which stopping our read refuses.
			s.answerFS(ctx, log, stream, req, nil, err)
			return
		}
	} else if req.More {
		rejectStream(stream, fmt.Errorf("%s request with more to come: only a write has more", req.Op))
		return
	}
	replies, err := s.fsOp(ctx, req, data, h)
	s.answerFS(ctx, log, stream, req, replies, err)
}

// answerFS sends the replies, or the failure as one reply with its errno, and ends the stream.
func (s *server) answerFS(ctx context.Context, log *slog.Logger, stream *quic.Stream, req wire.FSRequest, replies []wire.FSReply, err error) {
	if err != nil {
		log.DebugContext(ctx, "filesystem operation failed", "op", req.Op.String(), "path", req.Path, "err", err)
		replies = []wire.FSReply{{Errno: wire.ErrnoOf(err), Reason: err.Error()}}
	}
	stream.CancelRead(0)
	for _, reply := range replies {
		if err := wire.WriteMessage(stream, reply); err != nil {
			stream.CancelWrite(streamCodeProtocol)
			return
		}
	}
	_ = stream.Close()
}

// gatherWrite reads the data of a write, first's and that of the requests after it, up to
// limit, holding its buffer in h: past limit the error wraps EFBIG, and past h's budget
// ENOMEM, both to be answered. Any other error is the client breaking the protocol, or gone.
func gatherWrite(ctx context.Context, r *wire.Reader, first wire.FSRequest, limit int64, h *hold) ([]byte, error) {
	data := first.Data
	for req := first; ; {
		if int64(len(data)) > limit {
			return nil, &os.PathError{Op: "write", Path: first.Path, Err: fmt.Errorf("over %d bytes: %w", limit, syscall.EFBIG)}
		}
		if err := h.take(ctx, int64(cap(data))-h.held()); err != nil {
			return nil, &os.PathError{Op: "write", Path: first.Path, Err: err}
		}
		if !req.More {
			return data, nil
		}
		msg, err := r.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("read the data of a write: %w", err)
		}
		next, ok := msg.(wire.FSRequest)
		if !ok {
			return nil, fmt.Errorf("unexpected %T amid the data of a write", msg)
		}
		if next.Op != wire.FSWrite || next.Path != "" || next.Path2 != "" || next.Mode != 0 || next.Flags != 0 || next.Size != 0 {
			return nil, fmt.Errorf("a %s request of %q amid the data of a write, whose later requests carry only data", next.Op, next.Path)
		}
		data, req = append(data, next.Data...), next
	}
}

// fsOp runs one operation in the target's root. A failure is an error wrapping the errno the
// client gets, with a text that names the path the client asked for, never our view of it.
func (s *server) fsOp(ctx context.Context, req wire.FSRequest, data []byte, h *hold) ([]wire.FSReply, error) {
	op := req.Op.String()
	flagsOK := req.Flags == 0 || req.Op == wire.FSRemove && req.Flags&^wire.FSRemoveDir == 0
	if !flagsOK {
		return nil, &os.PathError{Op: op, Path: req.Path, Err: fmt.Errorf("flags %#x: %w", req.Flags, syscall.EINVAL)}
	}
	path, err := cleanTargetPath(req.Path)
	if err != nil {
		return nil, &os.PathError{Op: op, Path: req.Path, Err: err}
	}
	root, err := s.targetRoot(ctx)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	one := func(reply wire.FSReply, err error) ([]wire.FSReply, error) {
		if err != nil {
			return nil, &os.PathError{Op: op, Path: req.Path, Err: err}
		}
		return []wire.FSReply{reply}, nil
	}
	switch req.Op {
	case wire.FSLstat:
		st, err := lstatIn(root, path)
		return one(wire.FSReply{Stat: st}, err)
	case wire.FSStat:
		st, err := statIn(root, path)
		return one(wire.FSReply{Stat: st}, err)
	case wire.FSReadDir:
		entries, err := readDirIn(root, path, wire.MaxDirEntries)
		if err != nil {
			return nil, &os.PathError{Op: op, Path: req.Path, Err: err}
		}
		return wire.SplitDirEntries(entries)
	case wire.FSReadLink:
		target, err := readLinkIn(root, path)
		return one(wire.FSReply{Target: target}, err)
	case wire.FSRead:
		limit := s.maxFile()
		if req.Size > 0 && req.Size < limit {
			limit = req.Size
		}
		return readIn(ctx, root, path, req.Path, limit, h)
	case wire.FSWrite:
		st, err := writeIn(root, path, req.Mode, data)
		return one(wire.FSReply{Stat: st}, err)
	case wire.FSMkdir:
		st, err := mkdirIn(root, path, req.Mode)
		return one(wire.FSReply{Stat: st}, err)
	case wire.FSRemove:
		return one(wire.FSReply{}, removeIn(root, path, req.Flags&wire.FSRemoveDir != 0))
	case wire.FSRename:
		to, err := cleanTargetPath(req.Path2)
		if err == nil {
			err = renameIn(root, path, to)
		}
		if err != nil {
			return nil, &os.LinkError{Op: op, Old: req.Path, New: req.Path2, Err: err}
		}
		return []wire.FSReply{{}}, nil
	case wire.FSSymlink:
		st, err := symlinkIn(root, req.Path2, path)
		return one(wire.FSReply{Stat: st}, err)
	}
	return one(wire.FSReply{}, fmt.Errorf("unknown filesystem operation: %w", syscall.ENOSYS))
}

// cleanTargetPath refuses what checkTargetPath refuses, and cleans the rest ("//", "/./", a
// trailing slash), so that the last element is a name.
func cleanTargetPath(path string) (string, error) {
	if checkTargetPath(path) != nil {
		return "", syscall.EINVAL
	}
	return filepath.Clean(path), nil
}

// errNeedsOpenat2 refuses a change where the kernel cannot resolve paths inside the root:
// without openat2 an absolute symlink would lead the change into the sidecar's own filesystem.
var errNeedsOpenat2 = fmt.Errorf("changing files of the target needs openat2 (Linux 5.6, and a seccomp profile that allows it): %w", syscall.EROFS)

// parentIn opens the directory that holds path, resolved inside the root, and returns it with
// path's last element. The root itself is "." in itself, so that an operation on "/" fails as
// the kernel fails it there (EEXIST for mkdir, EISDIR for a write, ...). Acting on the last
// element relative to its directory, without following it, is what keeps a symlink there from
// leading outside the root.
func parentIn(root int, path string, change bool) (int, string, error) {
	dir, name := filepath.Split(path)
	if name == "" {
		dir, name = "/", "."
	}
	fd, err := openBeneath(root, dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, !change)
	if change && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM)) {
		return -1, "", errNeedsOpenat2
	}
	return fd, name, err
}

func lstatIn(root int, path string) (wire.FileStat, error) {
	dir, name, err := parentIn(root, path, false)
	if err != nil {
		return wire.FileStat{}, err
	}
	defer unix.Close(dir)
	return fstatat(dir, name)
}

// statIn follows symlinks, inside the root. O_PATH needs no permission on the file and has no
// side effect, where opening a device or a FIFO to stat it could have.
func statIn(root int, path string) (wire.FileStat, error) {
	fd, err := openBeneath(root, path, unix.O_PATH|unix.O_CLOEXEC, true)
	if err != nil {
		return wire.FileStat{}, err
	}
	defer unix.Close(fd)
	return fstat(fd)
}

// readDirIn lists a directory, following symlinks to it inside the root, with every entry's
// lstat: dotted names included (a ConfigMap volume's "..data" symlink and "..2024_..."
// directory), "." and ".." left out, as os.File.Readdirnames does. A directory of more than
// limit entries is EFBIG.
func readDirIn(root int, path string, limit int) ([]wire.DirEntry, error) {
	fd, err := openBeneath(root, path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, true)
	if err != nil {
		return nil, err
	}
	dir := os.NewFile(uintptr(fd), path)
	defer dir.Close()
	var entries []wire.DirEntry
	for {
		names, err := dir.Readdirnames(1024)
		for _, name := range names {
			st, err := fstatat(fd, name)
			if errors.Is(err, unix.ENOENT) {
				continue // removed since it was listed
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			entries = append(entries, wire.DirEntry{Name: name, Stat: st})
		}
		if len(entries) > limit {
			return nil, fmt.Errorf("over %d entries: %w", limit, syscall.EFBIG)
		}
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, bareError(err)
		}
	}
}

// readLinkIn refuses a target that would fill the buffer: it may have been cut.
func readLinkIn(root int, path string) (string, error) {
	dir, name, err := parentIn(root, path, false)
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	if n == len(buf) {
		return "", syscall.ENAMETOOLONG
	}
	return string(buf[:n]), nil
}

// readIn reads a whole file as readTargetFile does, with the stat of the file it opened.
func readIn(ctx context.Context, root int, path, asked string, limit int64, h *hold) ([]wire.FSReply, error) {
	fd, err := openBeneath(root, path, readFlags, true)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: asked, Err: err}
	}
	st, err := fstat(fd)
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: asked, Err: err}
	}
	f := os.NewFile(uintptr(fd), asked)
	defer f.Close()
	data, err := readBounded(ctx, f, asked, limit, h)
	if err != nil {
		return nil, err
	}
	replies := []wire.FSReply{{Stat: st}}
	for {
		last := &replies[len(replies)-1]
		last.Data = data[:min(len(data), wire.MaxFSChunk)]
		data = data[len(last.Data):]
		if len(data) == 0 {
			return replies, nil
		}
		last.More = true
		replies = append(replies, wire.FSReply{})
	}
}

// writeIn creates or truncates the file and writes data, never through a symlink in the last
// element (O_NOFOLLOW; the client resolves those), and syncs it before answering: the answer
// says the data is there. A FIFO without a reader fails the open (ENXIO) rather than hold the
// stream, and one whose reader does not read times out.
func writeIn(root int, path string, mode uint32, data []byte) (wire.FileStat, error) {
	dir, name, err := parentIn(root, path, true)
	if err != nil {
		return wire.FileStat{}, err
	}
	defer unix.Close(dir)
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	perm := mode & 0o7777
	if mode == 0 {
		perm = 0o644 // only for a new file: an existing one keeps its bits
	}
	fd, err := retryOpen(func() (int, error) { return unix.Openat(dir, name, flags, perm) })
	if err != nil {
		return wire.FileStat{}, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := fstat(fd)
	if err != nil {
		return wire.FileStat{}, err
	}
	_ = f.SetWriteDeadline(time.Now().Add(fileReadTimeout)) // os.ErrNoDeadline for a regular file
	if _, err := f.Write(data); err != nil {
		return wire.FileStat{}, bareError(err)
	}
	// A file of a filesystem that cannot sync (procfs, sysfs) has its data where it goes.
	if err := f.Sync(); err != nil && st.Mode&unix.S_IFMT == unix.S_IFREG && !errors.Is(err, unix.EINVAL) {
		return wire.FileStat{}, bareError(err)
	}
	// After the data: a file we may write but not chmod (another user's) fails the request
	// with its data written, not truncated and empty.
	if mode != 0 {
		if err := chmodExactly(fd, st, perm); err != nil {
			return wire.FileStat{}, err
		}
	}
	return fstat(fd)
}

// chmodExactly sets the permission bits to perm when the umask or an existing file's bits made
// them differ: the client asked for these bits, not for ours.
func chmodExactly(fd int, st wire.FileStat, perm uint32) error {
	if st.Mode&0o7777 == perm {
		return nil
	}
	return unix.Fchmod(fd, perm)
}

func mkdirIn(root int, path string, mode uint32) (wire.FileStat, error) {
	dir, name, err := parentIn(root, path, true)
	if err != nil {
		return wire.FileStat{}, err
	}
	defer unix.Close(dir)
	perm := mode & 0o7777
	if err := unix.Mkdirat(dir, name, perm); err != nil {
		return wire.FileStat{}, err
	}
	fd, err := retryOpen(func() (int, error) {
		return unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		// A directory we may not read (mode 0300 and we are not root) is made all the same;
		// its bits stay what the umask left.
		return fstatat(dir, name)
	}
	defer unix.Close(fd)
	st, err := fstat(fd)
	if err != nil {
		return wire.FileStat{}, err
	}
	if err := chmodExactly(fd, st, perm); err != nil {
		return wire.FileStat{}, err
	}
	return fstat(fd)
}

func removeIn(root int, path string, isDir bool) error {
	dir, name, err := parentIn(root, path, true)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	flags := 0
	if isDir {
		flags = unix.AT_REMOVEDIR
	}
	return unix.Unlinkat(dir, name, flags)
}

func renameIn(root int, from, to string) error {
	fromDir, fromName, err := parentIn(root, from, true)
	if err != nil {
		return err
	}
	defer unix.Close(fromDir)
	toDir, toName, err := parentIn(root, to, true)
	if err != nil {
		return err
	}
	defer unix.Close(toDir)
	return unix.Renameat(fromDir, fromName, toDir, toName)
}

// symlinkIn makes the link with target as it is: it is resolved only when followed, inside the
// root then too.
func symlinkIn(root int, target, path string) (wire.FileStat, error) {
	dir, name, err := parentIn(root, path, true)
	if err != nil {
		return wire.FileStat{}, err
	}
	defer unix.Close(dir)
	if err := unix.Symlinkat(target, dir, name); err != nil {
		return wire.FileStat{}, err
	}
	return fstatat(dir, name)
}

func fstat(fd int) (wire.FileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return wire.FileStat{}, err
	}
	return fileStat(&st), nil
}

// fstatat is the lstat of name in dir.
func fstatat(dir int, name string) (wire.FileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wire.FileStat{}, err
	}
	return fileStat(&st), nil
}

// fileStat converts explicitly: the field types of Stat_t differ between architectures.
func fileStat(st *unix.Stat_t) wire.FileStat {
	return wire.FileStat{
		Mode:   uint32(st.Mode),
		Size:   int64(st.Size),
		Blocks: int64(st.Blocks),
		Ino:    uint64(st.Ino),
		Nlink:  uint32(st.Nlink),
		UID:    uint32(st.Uid),
		GID:    uint32(st.Gid),
		Rdev:   uint64(st.Rdev),
		Atime:  st.Atim.Nano(),
		Mtime:  st.Mtim.Nano(),
		Ctime:  st.Ctim.Nano(),
	}
}

// bareError unwraps an os.File error to what failed (an errno, a deadline), so that the
// caller's own wrapping names the path once.
func bareError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
