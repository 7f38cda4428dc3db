//go:build linux

package layer

import (
	"context"
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// A non-blocking connect must not wait for the pod's dial: an event loop (Node.js, nginx,
// redis clients, Python's asyncio) runs on one thread and would stall for a whole dial at each
// new connection. So the socket is parked (see parking) and the connect returns EINPROGRESS at
// once; when the pod's dial ends, the socket becomes connected or fails, as a connect through
// the kernel would, and the program learns it the usual way: EPOLLOUT, then SO_ERROR.

// parkable tells whether the program's socket fd can wait for its dial parked: a non-blocking
// TCP socket (not MPTCP or SCTP, whose handshakes differ).
func parkable(fd int) bool {
	status, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || status&unix.O_NONBLOCK == 0 {
		return false
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	return err == nil && proto == unix.IPPROTO_TCP
}

// connectParked parks the program's socket fd, answers c with EINPROGRESS, and settles the
// socket when the pod's dial for dst ends. It reports false, having answered nothing, when the
// socket could not be parked (bound to a device, say): the caller then dials as for a blocking
// socket.
func (s *Supervisor) connectParked(c *call, fd int, info socketInfo, dst netip.AddrPort) bool {
	g, started := s.dialings.start(info.ino, true)
	if !started {
		s.joinDial(c, fd, info.ino, g) // another thread's connect of the socket came first
		return true
	}
	// The supervisor holds the socket until it is settled, so that the parked address stays
	// the program's socket's even if the program closes it.
	own, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		s.dialings.end(info.ino, g)
		return false
	}
	parkedAt, err := s.parking.park(own, info.family)
	if err != nil {
		unix.Close(own)
		s.dialings.end(info.ino, g)
		s.log.Debug("park a non-blocking connect", "err", err)
		return false
	}
	c.fail(unix.EINPROGRESS)
	go func() {
		defer unix.Close(own)
		defer s.dialings.end(info.ino, g)
		s.settleParked(own, info, dst, parkedAt)
	}()
	return true
}

// settleParked dials dst from the pod for the program's socket fd, parked at parkedAt, and
// connects the socket to the relay carrying the pod's connection, or fails it.
func (s *Supervisor) settleParked(fd int, info socketInfo, dst, parkedAt netip.AddrPort) {
	conn, remote, err := s.dialPod(dst)
	if err != nil {
		s.failParked(fd, info, parkedAt, errnoOf(err))
		return
	}
	if !stillParked(fd, parkedAt) {
		// The program dropped the connect, or the kernel ended it (the program's own
		// TCP_USER_TIMEOUT or TCP_SYNCNT): its socket already shows how.
		conn.Close()
		s.log.Debug("parked connect gone before the pod's connection", "dst", remote)
		return
	}
	// The peer is known before the socket connects: Go's dialer asks getpeername as soon as it
	// sees the socket writable.
	s.sockets.setPeer(info.ino, dst)
	ctx, cancel := context.WithTimeout(s.ctx, pairTimeout)
	local, err := s.parking.join(ctx, info.family, parkedAt)
	cancel()
	if err != nil {
		s.sockets.forget(info.ino)
		conn.Close()
		s.log.Error("connect the parked socket to the relay", "dst", remote, "err", err)
		s.failParked(fd, info, parkedAt, unix.ENETUNREACH)
		return
	}
	s.relay.start(local, conn, func() { s.sockets.forget(info.ino) })
	s.log.Debug("connect through the pod", "dst", remote)
}

// failParked ends the parked connect of the program's socket fd with errno: the socket shows
// an error (EPOLLERR), and the program reads errno from SO_ERROR or a connect made again.
func (s *Supervisor) failParked(fd int, info socketInfo, parkedAt netip.AddrPort, errno unix.Errno) {
	if !stillParked(fd, parkedAt) {
		return
	}
	// Recorded first: the program may look the moment the socket shows the error.
	s.failures.put(info.ino, errno)
	if err := disconnect(fd); err != nil && !errors.Is(err, unix.EBADF) {
		s.failures.take(info.ino)
		s.log.Error("fail the parked socket", "err", err)
	}
}
