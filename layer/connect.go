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
// (shorter: a program that set its own timeout cannot interrupt a trapped connect).
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

func (s *Supervisor) connectTCP(c *call, fd int, info socketInfo, dst netip.AddrPort) {
	remote := netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	conn, err := s.cfg.Dial(ctx, "tcp", remote.String())
	cancel()
	if err != nil {
		s.log.Debug("connect through the pod failed", "dst", remote, "err", err)
		c.fail(errnoOf(err))
		return
	}
	result, err := s.relay.attach(fd, info, conn, func() { s.sockets.forget(info.ino) })
	if err != nil {
		conn.Close()
		s.log.Error("connect the program's socket to the relay", "dst", remote, "err", err)
		c.fail(errnoOf(err))
		return
	}
	s.sockets.setPeer(info.ino, dst)
	s.log.Debug("connect through the pod", "dst", remote, "tid", c.tid())
	c.ret(result)
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
