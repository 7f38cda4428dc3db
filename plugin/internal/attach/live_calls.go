package attach

import (
	"context"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The calls of a Live session, each to the sidecar in use. While the target restarts there is
// none that answers: a call fails as it would on a lost link, and the next one after the
// renewal goes to the new sidecar.

// Dial connects to address from inside the pod (sidecarclient.Session.Dial).
func (l *Live) Dial(ctx context.Context, network, address string, timeout time.Duration) (*sidecarclient.Stream, error) {
	return l.Session().Dial(ctx, network, address, timeout)
}

// ReadFile reads a file of the target container whole.
func (l *Live) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return l.Session().ReadFile(ctx, path)
}

// Environ is the target container's environment, as its running instance started with it.
func (l *Live) Environ(ctx context.Context) ([]string, error) {
	return l.Session().Environ(ctx)
}

func (l *Live) Lstat(ctx context.Context, path string) (wire.FileStat, error) {
	return l.Session().Lstat(ctx, path)
}

func (l *Live) Stat(ctx context.Context, path string) (wire.FileStat, error) {
	return l.Session().Stat(ctx, path)
}

func (l *Live) ReadDir(ctx context.Context, path string) ([]wire.DirEntry, error) {
	return l.Session().ReadDir(ctx, path)
}

func (l *Live) ReadLink(ctx context.Context, path string) (string, error) {
	return l.Session().ReadLink(ctx, path)
}

func (l *Live) ReadFileLimit(ctx context.Context, path string, limit int64) ([]byte, wire.FileStat, error) {
	return l.Session().ReadFileLimit(ctx, path, limit)
}

func (l *Live) WriteFile(ctx context.Context, path string, data []byte, mode uint32) (wire.FileStat, error) {
	return l.Session().WriteFile(ctx, path, data, mode)
}

func (l *Live) Mkdir(ctx context.Context, path string, mode uint32) (wire.FileStat, error) {
	return l.Session().Mkdir(ctx, path, mode)
}

func (l *Live) Remove(ctx context.Context, path string, dir bool) error {
	return l.Session().Remove(ctx, path, dir)
}

func (l *Live) Rename(ctx context.Context, from, to string) error {
	return l.Session().Rename(ctx, from, to)
}

func (l *Live) Symlink(ctx context.Context, target, path string) (wire.FileStat, error) {
	return l.Session().Symlink(ctx, target, path)
}

// Subscribe takes the pod's port (sidecarclient.Session.Subscribe), and takes it again through
// each new sidecar.
func (l *Live) Subscribe(ctx context.Context, port uint16, sub sidecarclient.Subscription) error {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	if err := l.Session().Subscribe(ctx, port, sub); err != nil {
		return err
	}
	l.subs[port] = sub
	return nil
}

// Unsubscribe gives the pod's port back to its app.
func (l *Live) Unsubscribe(ctx context.Context, port uint16) error {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	delete(l.subs, port)
	return l.Session().Unsubscribe(ctx, port)
}

// ServeIncoming hands each connection that reaches a subscribed port to handle, through each
// sidecar in turn, until ctx ends or the session is closed.
func (l *Live) ServeIncoming(ctx context.Context, handle func(*sidecarclient.Incoming)) error {
	for {
		s, renewed := l.now()
		err := s.ServeIncoming(ctx, handle)
		select {
		case <-renewed:
		case <-ctx.Done():
			return err
		case <-l.done:
			return err
		}
	}
}
