package sidecarclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The target container's filesystem, one operation per stream: operations never wait on one
// another, nor on the control stream's requests. Paths are absolute in the container. A failure
// in the pod keeps its errno (errors.Is with syscall.ENOENT), whatever this machine's numbers.

// Lstat returns the lstat of path in the pod.
func (s *Session) Lstat(ctx context.Context, path string) (wire.FileStat, error) {
	reply, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSLstat, Path: path})
	return reply.Stat, err
}

// Stat returns the stat of path in the pod, following symlinks inside the container's root.
func (s *Session) Stat(ctx context.Context, path string) (wire.FileStat, error) {
	reply, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSStat, Path: path})
	return reply.Stat, err
}

// ReadDir lists directory path in the pod, but "." and "..", each entry with its lstat. A
// listing over wire.MaxDirEntries is an error, from the sidecar (EFBIG) or, if it sends more
// all the same, from here.
func (s *Session) ReadDir(ctx context.Context, path string) ([]wire.DirEntry, error) {
	var entries []wire.DirEntry
	err := s.fsDo(ctx, wire.FSRequest{Op: wire.FSReadDir, Path: path}, func(r wire.FSReply) error {
		if r.More && len(r.Entries) == 0 {
			return errEmptyReply
		}
		if len(entries)+len(r.Entries) > wire.MaxDirEntries {
			return fmt.Errorf("the sidecar sent over %d entries, the most a listing may have", wire.MaxDirEntries)
		}
		entries = append(entries, r.Entries...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// ReadLink returns the target of symlink path in the pod, as it is.
func (s *Session) ReadLink(ctx context.Context, path string) (string, error) {
	reply, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSReadLink, Path: path})
	return reply.Target, err
}

// ReadFileLimit reads the whole of file path in the pod, following symlinks, with the stat of
// the file opened. A file over limit fails with EFBIG; limit is at most wire.MaxFileSize, which
// a limit of 0 means.
func (s *Session) ReadFileLimit(ctx context.Context, path string, limit int64) ([]byte, wire.FileStat, error) {
	if limit <= 0 || limit > wire.MaxFileSize {
		limit = wire.MaxFileSize
	}
	var data []byte
	var st wire.FileStat
	first := true
	err := s.fsDo(ctx, wire.FSRequest{Op: wire.FSRead, Path: path, Size: limit}, func(r wire.FSReply) error {
		if first {
			st, first = r.Stat, false
		}
		if r.More && len(r.Data) == 0 {
			return errEmptyReply
		}
		if int64(len(data)+len(r.Data)) > limit {
			return fmt.Errorf("the sidecar sent over the %d bytes asked for", limit)
		}
		data = append(data, r.Data...)
		return nil
	})
	if err != nil {
		return nil, wire.FileStat{}, err
	}
	return data, st, nil
}

// WriteFile creates or truncates file path in the pod, sets its permission bits to mode (0
// keeps an existing file's), and writes data, which is on the pod's disk when it returns; it
// returns the file's stat after writing. More than wire.MaxFileSize is EFBIG without asking.
func (s *Session) WriteFile(ctx context.Context, path string, data []byte, mode uint32) (wire.FileStat, error) {
	if len(data) > wire.MaxFileSize {
		return wire.FileStat{}, fmt.Errorf("write %s in the pod: %d bytes, over the %d a file may have: %w", path, len(data), wire.MaxFileSize, syscall.EFBIG)
	}
	reply, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSWrite, Path: path, Mode: mode, Data: data})
	return reply.Stat, err
}

// Mkdir makes directory path in the pod with permission bits mode, and returns its stat.
func (s *Session) Mkdir(ctx context.Context, path string, mode uint32) (wire.FileStat, error) {
	reply, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSMkdir, Path: path, Mode: mode})
	return reply.Stat, err
}

// Remove unlinks path in the pod, or removes the empty directory path when dir is set.
func (s *Session) Remove(ctx context.Context, path string, dir bool) error {
	req := wire.FSRequest{Op: wire.FSRemove, Path: path}
	if dir {
		req.Flags = wire.FSRemoveDir
	}
	_, err := s.fsSingle(ctx, req)
	return err
}

// Rename renames from to to in the pod, replacing what to names.
func (s *Session) Rename(ctx context.Context, from, to string) error {
	_, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSRename, Path: from, Path2: to})
	return err
}

// Symlink makes symlink path in the pod, pointing to target as it is, and returns its lstat.
func (s *Session) Symlink(ctx context.Context, target, path string) (wire.FileStat, error) {
	reply, err := s.fsSingle(ctx, wire.FSRequest{Op: wire.FSSymlink, Path: path, Path2: target})
	return reply.Stat, err
}

// errEmptyReply refuses a reply that announces more while carrying nothing: a sidecar sends
// none, and a broken one could send them forever without ever reaching a bound.
var errEmptyReply = errors.New("the sidecar sent an empty reply with more to come")

// fsSingle runs an operation answered in one reply.
func (s *Session) fsSingle(ctx context.Context, req wire.FSRequest) (wire.FSReply, error) {
	var reply wire.FSReply
	err := s.fsDo(ctx, req, func(r wire.FSReply) error {
		if r.More {
			return fmt.Errorf("the sidecar announced more than one reply to %s", req.Op)
		}
		reply = r
		return nil
	})
	if err != nil {
		return wire.FSReply{}, err
	}
	return reply, nil
}

// fsDo runs one operation on a stream of its own: the request, a write's data in as many
// requests as it takes, then the replies, each handed to each until the last. A failure the
// sidecar reports ends the answer and keeps its errno; each refusing a reply ends it too.
// Cancelling ctx ends the stream both ways, so that nothing waits for an answer that is slow
// to come (a FIFO in the pod, a sidecar gone quiet).
func (s *Session) fsDo(ctx context.Context, req wire.FSRequest, each func(wire.FSReply) error) error {
	what := req.Op.String() + " " + req.Path
	if req.Op == wire.FSRename {
		what += " " + req.Path2
	}
	if err := s.need(wire.FeatureFS, "serve the pod's files"); err != nil {
		return err
	}
	stream, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("%s: open a stream: %w", what, err)
	}
	stop := context.AfterFunc(ctx, func() { abandon(stream) })
	defer stop()
	// A sidecar that refuses a write early stops reading it, which fails the sending here: its
	// answer, read below, says why.
	sendErr := sendFSRequest(stream, req)
	_ = stream.Close()
	r := wire.NewReader(stream)
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			abandon(stream)
			switch {
			case ctx.Err() != nil:
				return fmt.Errorf("%s: %w", what, context.Cause(ctx))
			case sendErr != nil:
				return fmt.Errorf("%s: send the request: %w", what, sendErr)
			}
			return fmt.Errorf("%s: read the answer: %w", what, err)
		}
		var reply wire.FSReply
		switch m := msg.(type) {
		case wire.FSReply:
			reply = m
		case wire.Error:
			abandon(stream)
			return fmt.Errorf("%s: the sidecar refused the request: %w", what, m)
		default:
			abandon(stream)
			return fmt.Errorf("%s: unexpected reply %T", what, msg)
		}
		if err := reply.Err(); err != nil {
			abandon(stream)
			return fmt.Errorf("%s in the pod: %w", what, err)
		}
		if err := each(reply); err != nil {
			abandon(stream)
			return fmt.Errorf("%s: %w", what, err)
		}
		if !reply.More {
			// The sidecar ends its side after its last reply; stopping our read, rather than
			// waiting to read that end, frees the stream here at once.
			stream.CancelRead(0)
			return nil
		}
	}
}

// sendFSRequest sends req with its data cut into as many requests as it takes; the requests
// after the first carry only the data.
func sendFSRequest(w io.Writer, req wire.FSRequest) error {
	data := req.Data
	req.Data = data[:min(len(data), wire.MaxFSChunk)]
	data = data[len(req.Data):]
	req.More = len(data) > 0
	if err := wire.WriteMessage(w, req); err != nil {
		return err
	}
	for len(data) > 0 {
		chunk := data[:min(len(data), wire.MaxFSChunk)]
		data = data[len(chunk):]
		if err := wire.WriteMessage(w, wire.FSRequest{Op: req.Op, Data: chunk, More: len(data) > 0}); err != nil {
			return err
		}
	}
	return nil
}
