package redirect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// lockName is an abstract Unix socket: its namespace is the network namespace's, which every
// sidecar of a pod shares, and the kernel frees it when its holder dies, however it dies.
const lockName = "@remocal-redirect-lock"

// Lock serializes the sidecars of a pod between checking that no other one redirects a port and
// redirecting it, so that two of them never both find a port free. The returned func unlocks.
func Lock(ctx context.Context) (unlock func(), err error) {
	addr := &net.UnixAddr{Name: lockName, Net: "unix"}
	wait := time.NewTicker(10 * time.Millisecond)
	defer wait.Stop()
	for {
		ln, err := net.ListenUnix("unix", addr)
		if err == nil {
			return func() { ln.Close() }, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("lock the pod's redirects: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock the pod's redirects: another sidecar holds the lock: %w", context.Cause(ctx))
		case <-wait.C:
		}
	}
}
