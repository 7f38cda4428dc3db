//go:build linux

package layer

import (
	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
	"golang.org/x/sys/unix"
)

// dispatch answers one notification. Calls that may wait on the pod (a remote connect, sendto,
// recvfrom) get their own goroutine, so that a slow dial never stalls another thread's
// syscalls; the rest are answered in the receive loop, which is cheaper than a goroutine.
func (s *Supervisor) dispatch(l *seccomp.Listener, n seccomp.Notif) {
	c := &call{l: l, n: n, log: s.log}
	switch n.Data.Nr {
	case unix.SYS_CONNECT:
		s.connect(c)
	case unix.SYS_SENDTO:
		go s.sendto(c)
	case unix.SYS_RECVFROM:
		go s.recvfrom(c)
	case unix.SYS_GETPEERNAME:
		s.getpeername(c)
	case unix.SYS_GETSOCKOPT:
		s.getsockopt(c)
	case unix.SYS_LISTEN:
		s.listen(c)
	case unix.SYS_ACCEPT4:
		go s.accept(c, int(c.arg(3)))
	case unix.SYS_OPENAT:
		s.open(c, 1, 2)
	default:
		if !s.dispatchArch(c) {
			c.pass()
		}
	}
}
