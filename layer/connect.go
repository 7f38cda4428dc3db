//go:build linux

package layer

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds a connect carried to the pod, like the kernel's SYN retries do locally
// (shorter: the program's own SO_SNDTIMEO does not end a trapped connect; a signal does).
const dialTimeout = 30 * time.Second

// connect(fd, addr, addrlen): a destination kept local runs in the kernel, decided in the
// receive loop; any other is dialed from the pod, in a goroutine of its own, and the program's
// socket is connected to a relay carrying it.
func (s *Supervisor) connect(c *call) {
	raw, err := c.readSockaddr(1, 2)
	if err != nil {
		c.pass()
		return
	}
	dst, ok := parseInet(raw)
	if !ok || s.cfg.Dial == nil || !s.cfg.Outgoing.Remote(dst) || !c.stillWaiting() {
		c.pass()
		return
	}
	go s.connectRemote(c, dst)
}

func (s *Supervisor) connectRemote(c *call, dst netip.AddrPort) {
	fd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	if errno, ok := s.takeFailure(fd, info.ino); ok {
		// A connect made again after a parked connect failed reports how, as the kernel's
		// does (and the socket's own pending reset goes with it).
		_, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		c.fail(errno)
		return
	}
	if g, ok := s.dialings.of(info.ino); ok {
		// A connect restarted after a signal, or made again: the first one's dial goes on.
		s.joinDial(c, fd, info.ino, g)
		return
	}
	if _, redirected := s.sockets.peer(info.ino); redirected {
		// A second connect on a redirected socket: the kernel answers EISCONN or EALREADY
		// from the socket's real state.
		c.pass()
		return
	}
	switch info.typ {
	case unix.SOCK_STREAM:
		s.connectTCP(c, fd, info, dst)
	case unix.SOCK_DGRAM:
		s.connectUDP(c, fd, info, dst)
	default:
		c.pass()
	}
}

// connectTCP dials dst from the pod for the program's socket fd. A non-blocking socket is
// parked and answered at once (see connectParked); otherwise the dial runs in a goroutine of
// its own that outlives the call if a signal ends it (see dialings), and c is answered with
// the result.
func (s *Supervisor) connectTCP(c *call, fd int, info socketInfo, dst netip.AddrPort) {
	if parkable(fd) && s.connectParked(c, fd, info, dst) {
		return
	}
	g, started := s.dialings.start(info.ino, false)
	if started {
		own, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			s.dialings.finish(info.ino, g, 0, errnoOf(err))
		} else {
			go func() {
				defer unix.Close(own)
				val, errno := s.dialTCP(own, info, dst)
				s.dialings.finish(info.ino, g, val, errno)
			}()
		}
	}
	s.joinDial(c, fd, info.ino, g)
}

// joinDial answers a connect of a socket whose dial g is already under way: as the kernel
// does for a parked socket, which is really connecting; with the dial's end otherwise.
func (s *Supervisor) joinDial(c *call, fd int, ino uint64, g *dialing) {
	if g.parked {
		c.pass() // EALREADY, or a blocking socket's wait for the end
		return
	}
	s.awaitDial(c, fd, ino, g)
}

// dialTCP dials dst from the pod and connects the program's socket fd to the relay carrying
// it. It returns what the program's connect returns: val, or errno when not 0.
func (s *Supervisor) dialTCP(fd int, info socketInfo, dst netip.AddrPort) (val int64, errno unix.Errno) {
	conn, remote, err := s.dialPod(dst)
	if err != nil {
		return 0, errnoOf(err)
	}
	result, err := s.relay.attach(fd, info, conn, func() { s.sockets.forget(info.ino) })
	if err != nil {
		conn.Close()
		s.log.Error("connect the program's socket to the relay", "dst", remote, "err", err)
		return 0, errnoOf(err)
	}
	s.sockets.setPeer(info.ino, dst)
	s.log.Debug("connect through the pod", "dst", remote)
	return result, 0
}

// dialPod dials dst from the pod over TCP, bounded by dialTimeout; remote is dst as the pod
// sees it (a v4-mapped address unmapped).
func (s *Supervisor) dialPod(dst netip.AddrPort) (conn Conn, remote netip.AddrPort, err error) {
	remote = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	defer cancel()
	if conn, err = s.cfg.Dial(ctx, "tcp", remote.String()); err != nil {
		s.log.Debug("connect through the pod failed", "dst", remote, "err", err)
	}
	return conn, remote, err
}

// awaitDial answers c with the end of dial g of the program's socket fd (inode ino), unless a
// signal for the thread comes first: the connect then ends as the kernel's blocking connect
// does, with ERESTARTSYS (EINTR with a send timeout, SO_SNDTIMEO), and the connection goes on
// in the background: the restarted connect, or the program's next one, waits for it. Canceling
// the dial instead would make a restarting program dial anew at each signal, and so never
// connect under a stream of them.
func (s *Supervisor) awaitDial(c *call, fd int, ino uint64, g *dialing) {
	timed := false
	if tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO); err == nil {
		timed = tv.Sec != 0 || tv.Usec != 0
	}
	tick := time.NewTicker(waitPollMillis * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-g.done:
			val, errno := s.dialings.claim(ino, g)
			if errno != 0 {
				c.fail(errno)
			} else {
				c.ret(val)
			}
			return
		case <-tick.C:
			signalled := c.interruption(timed)
			if !c.stillWaiting() {
				return // killed; the dial's end waits for a later connect, if any
			}
			if signalled != 0 {
				c.fail(signalled)
				return
			}
		}
	}
}

// errnoOf is the errno the program gets for a failed remote connect: the pod's own when the
// pod's kernel gave one, else "network unreachable" (the link to the pod is down).
func errnoOf(err error) unix.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.Errno(errno)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return unix.ETIMEDOUT
	}
	return unix.ENETUNREACH
}
