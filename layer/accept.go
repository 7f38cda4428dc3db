//go:build linux

package layer

import (
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// arrivals are the connections the plugin is about to make to the program's listeners on
// behalf of clients of the pod: keyed by the plugin's end, they give the client's address,
// which the program's accept and getpeername then report instead of the plugin's loopback
// address.
type arrivals struct {
	mu      sync.Mutex
	clients map[netip.AddrPort]arrival
}

type arrival struct {
	client netip.AddrPort
	ino    uint64 // the program's socket once accepted, 0 before
}

// ExpectArrival says that the connection about to come to a listener of the program from
// local (the caller's end, bound before it connects) is the pod's client's, from client. The
// program's accept then reports client. done forgets it, when that connection has ended.
func (s *Supervisor) ExpectArrival(local, client netip.AddrPort) (done func()) {
	s.arrivals.mu.Lock()
	defer s.arrivals.mu.Unlock()
	if s.arrivals.clients == nil {
		s.arrivals.clients = map[netip.AddrPort]arrival{}
	}
	local = unmapped(local)
	s.arrivals.clients[local] = arrival{client: client}
	return func() {
		s.arrivals.mu.Lock()
		a := s.arrivals.clients[local]
		delete(s.arrivals.clients, local)
		s.arrivals.mu.Unlock()
		if a.ino != 0 {
			s.sockets.forget(a.ino)
		}
	}
}

func (a *arrivals) empty() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.clients) == 0
}

// accepted looks up the client of a connection the program accepted from peer, and ties it
// to the program's socket ino.
func (a *arrivals) accepted(peer netip.AddrPort, ino uint64) (netip.AddrPort, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	peer = unmapped(peer)
	got, ok := a.clients[peer]
	if ok {
		got.ino = ino
		a.clients[peer] = got
	}
	return got.client, ok
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// accept(fd, addr, addrlen) and accept4(fd, addr, addrlen, flags), trapped only when the
// program asks for the address: while the plugin has announced arrivals, the supervisor accepts
// on the program's listener itself, so that it can report the pod's client as the peer, and
// hands the new socket over; otherwise the kernel answers.
func (s *Supervisor) accept(c *call, flags int) {
	if s.arrivals.empty() {
		c.pass()
		return
	}
	lfd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(lfd)
	if info.typ != unix.SOCK_STREAM || (info.family != unix.AF_INET && info.family != unix.AF_INET6) {
		c.pass()
		return
	}
	fd, peer, errno := s.acceptOn(c, lfd)
	if errno != 0 {
		if c.stillWaiting() {
			c.fail(errno)
		}
		return
	}
	defer unix.Close(fd)
	if flags&unix.SOCK_NONBLOCK != 0 {
		if err := unix.SetNonblock(fd, true); err != nil {
			c.fail(errnoOf(err))
			return
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		// An IPv6 client cannot be told to an IPv4 socket: it keeps its real peer.
		if client, ok := s.arrivals.accepted(peer, st.Ino); ok && (info.family == unix.AF_INET6 || client.Addr().Unmap().Is4()) {
			peer = client
			s.sockets.setPeer(st.Ino, client)
		}
	}
	if err := c.writeSockaddr(1, 2, encodeInet(info.family, peer)); err != nil {
		c.fail(unix.EFAULT)
		return
	}
	// If the program no longer waits, the connection is lost with our descriptor: as rare as
	// a signal landing between the client's arrival and its accept.
	if _, err := c.l.ReturnNewFD(c.n.ID, fd, flags&unix.SOCK_CLOEXEC != 0); err != nil {
		c.report(err)
	}
}

// acceptOn accepts a connection on the program's listener lfd as the program's accept would:
// at once or EAGAIN when the listener is non-blocking, else waiting for one while the program
// waits.
func (s *Supervisor) acceptOn(c *call, lfd int) (int, netip.AddrPort, unix.Errno) {
	blocking, deadline, errno := blockingCall(lfd, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	// Accept alone would not come back when the program goes away; it runs once a client waits
	// (or, in a race with another thread, waits for the next).
	if blocking {
		if errno := s.waitReadable(c, lfd, deadline); errno != 0 {
			return -1, netip.AddrPort{}, errno
		}
	}
	fd, sa, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		return -1, netip.AddrPort{}, errnoOf(err)
	}
	peer, _ := sockaddrOf(sa)
	return fd, peer, 0
}
