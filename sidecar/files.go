package sidecar

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// defaultMaxFile bounds a file sent whole on the control stream.
const defaultMaxFile = 16 << 20

// sendFile answers a FileRequest: the file of the target container at path, read through the
// target process's root, in chunks. Failures are one reply with the errno the read got.
func (s *server) sendFile(stream *quic.Stream, path string) error {
	data, err := s.readTargetFile(path)
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

func (s *server) readTargetFile(path string) ([]byte, error) {
	if !filepath.IsAbs(path) || strings.Contains("/"+path+"/", "/../") {
		return nil, fmt.Errorf("path %q: %w", path, syscall.EINVAL)
	}
	pid, err := targetPID(s.cfg.ProcRoot)
	if err != nil {
		return nil, err
	}
	// The target's root as the kernel shows it: its mount namespace, whatever our own is.
	f, err := os.Open(filepath.Join(s.cfg.ProcRoot, strconv.Itoa(pid), "root", path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := s.cfg.MaxFile
	if limit <= 0 {
		limit = defaultMaxFile
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, syscall.EFBIG)
	}
	return data, nil
}
