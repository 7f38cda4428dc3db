//go:build linux

package layer

import "golang.org/x/sys/unix"

// getpeername(fd, addr, addrlen) of a socket redirected to a relay returns the address the
// program connected to, not the relay's.
func (s *Supervisor) getpeername(c *call) {
	if s.sockets.empty() {
		c.pass() // nothing redirected: no need to look at the socket
		return
	}
	fd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	peer, ok := s.sockets.peer(info.ino)
	if !ok {
		c.pass()
		return
	}
	if err := c.writeSockaddr(1, 2, encodeInet(info.family, peer)); err != nil {
		c.fail(unix.EFAULT)
		return
	}
	c.ret(0)
}

// listen(fd, backlog) is made here on the program's socket, so that a successful listen can be
// announced with its address.
func (s *Supervisor) listen(c *call) {
	fd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	if info.typ != unix.SOCK_STREAM || (info.family != unix.AF_INET && info.family != unix.AF_INET6) {
		c.pass()
		return
	}
	if err := unix.Listen(fd, int(int32(c.arg(1)))); err != nil {
		c.fail(errnoOf(err))
		return
	}
	addr, err := boundAddr(fd)
	c.ret(0)
	if err == nil && s.cfg.OnListen != nil {
		ev := ListenEvent{PID: c.tid(), Addr: addr}
		go s.cfg.OnListen(ev)
	}
}
