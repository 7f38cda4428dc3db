package follow

import (
	"context"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// What the program asks of the pod goes to the pod the target is on when it asks: its
// connections (Dial) and its files (remotefs.Remote, which is Linux's alone).

// Dial connects to address from the current pod.
func (s *Session) Dial(ctx context.Context, network, address string, timeout time.Duration) (*sidecarclient.Stream, error) {
	return s.Current().Dial(ctx, network, address, timeout)
}

func (s *Session) Lstat(ctx context.Context, path string) (wire.FileStat, error) {
	return s.Current().Lstat(ctx, path)
}

func (s *Session) Stat(ctx context.Context, path string) (wire.FileStat, error) {
	return s.Current().Stat(ctx, path)
}

func (s *Session) ReadDir(ctx context.Context, path string) ([]wire.DirEntry, error) {
	return s.Current().ReadDir(ctx, path)
}

func (s *Session) ReadLink(ctx context.Context, path string) (string, error) {
	return s.Current().ReadLink(ctx, path)
}

func (s *Session) ReadFileLimit(ctx context.Context, path string, limit int64) ([]byte, wire.FileStat, error) {
	return s.Current().ReadFileLimit(ctx, path, limit)
}

func (s *Session) WriteFile(ctx context.Context, path string, data []byte, mode uint32) (wire.FileStat, error) {
	return s.Current().WriteFile(ctx, path, data, mode)
}

func (s *Session) Mkdir(ctx context.Context, path string, mode uint32) (wire.FileStat, error) {
	return s.Current().Mkdir(ctx, path, mode)
}

func (s *Session) Remove(ctx context.Context, path string, dir bool) error {
	return s.Current().Remove(ctx, path, dir)
}

func (s *Session) Rename(ctx context.Context, from, to string) error {
	return s.Current().Rename(ctx, from, to)
}

func (s *Session) Symlink(ctx context.Context, target, path string) (wire.FileStat, error) {
	return s.Current().Symlink(ctx, target, path)
}
