//go:build linux

package remotefs

import (
	"context"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// opTimeout bounds one remote operation. The link notices a lost sidecar sooner (its idle
// timeout); this only keeps a program from waiting forever on a remote that never answers.
const opTimeout = 30 * time.Second

// patient carries each operation through whatever the program's signals say. The kernel
// turns any signal to a thread waiting on FUSE into an interrupt, and go-fuse into a cancelled
// context; Go sends SIGURG to its own threads all the time to preempt goroutines, and a close
// that failed with EINTR cannot be retried, so cancelling would lose writes and fail reads
// that were about to succeed. The operations are short; they run to their end.
type patient struct{ remote Remote }

func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
}

func (p patient) Lstat(ctx context.Context, path string) (wire.FileStat, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.Lstat(ctx, path)
}

func (p patient) Stat(ctx context.Context, path string) (wire.FileStat, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.Stat(ctx, path)
}

func (p patient) ReadDir(ctx context.Context, path string) ([]wire.DirEntry, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.ReadDir(ctx, path)
}

func (p patient) ReadLink(ctx context.Context, path string) (string, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.ReadLink(ctx, path)
}

func (p patient) ReadFileLimit(ctx context.Context, path string, limit int64) ([]byte, wire.FileStat, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.ReadFileLimit(ctx, path, limit)
}

func (p patient) WriteFile(ctx context.Context, path string, data []byte, mode uint32) (wire.FileStat, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.WriteFile(ctx, path, data, mode)
}

func (p patient) Mkdir(ctx context.Context, path string, mode uint32) (wire.FileStat, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.Mkdir(ctx, path, mode)
}

func (p patient) Remove(ctx context.Context, path string, dir bool) error {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.Remove(ctx, path, dir)
}

func (p patient) Rename(ctx context.Context, from, to string) error {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.Rename(ctx, from, to)
}

func (p patient) Symlink(ctx context.Context, target, path string) (wire.FileStat, error) {
	ctx, cancel := detach(ctx)
	defer cancel()
	return p.remote.Symlink(ctx, target, path)
}
