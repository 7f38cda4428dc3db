//go:build linux

package layer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// udpIdle ends a UDP flow to the pod after this long without a datagram either way. The
// supervisor cannot see the program close a UDP socket, so idleness is the end of a flow; a
// later datagram to the same destination opens a new one.
const udpIdle = 2 * time.Minute

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

// udpFlow carries one program socket's datagrams to one destination in the pod: the program's
// socket talks to a loopback socket of ours (relay), which talks to the pod (pod).
type udpFlow struct {
	relay *net.UDPConn
	pod   Conn
	app   netip.AddrPort // the program socket's address, as the relay reaches it
	done  chan struct{}  // closed by close

	mu     sync.Mutex
	last   time.Time
	closed bool
}

// connectUDP connects the program's UDP socket to a relay for dst: it then sends and receives
// with send/recv as if connected to dst.
func (s *Supervisor) connectUDP(c *call, fd int, info socketInfo, dst netip.AddrPort) {
	remote := netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	f, err := s.newUDPFlow(info.family, remote)
	if err != nil {
		c.fail(errnoOf(err))
		return
	}
	if err := unix.Connect(fd, unixSockaddr(f.relayAddr(info.family), info.family)); err != nil {
		f.close()
		c.fail(errnoOf(err))
		return
	}
	app, err := boundAddr(fd)
	if err != nil {
		f.close()
		c.fail(errnoOf(err))
		return
	}
	f.app = app
	s.sockets.setPeer(info.ino, dst)
	s.runUDPFlow(f, func() { s.sockets.forget(info.ino) })
	c.ret(0)
}

// sendto(fd, buf, len, flags, dest, addrlen) with a destination on an unconnected UDP socket:
// the datagram goes through the pod, and the replies come back to the socket from a loopback
// address that recvfrom translates back to dest.
func (s *Supervisor) sendto(c *call) {
	raw, err := c.readSockaddr(4, 5)
	if err != nil {
		c.pass()
		return
	}
	dst, ok := parseInet(raw)
	if !ok || s.cfg.Dial == nil || !s.cfg.Outgoing.Remote(dst) {
		c.pass()
		return
	}
	fd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	if info.typ != unix.SOCK_DGRAM {
		c.pass()
		return
	}
	payload := make([]byte, min(c.arg(2), maxDatagram))
	if err := seccomp.ReadMem(c.tid(), c.arg(1), payload); err != nil || !c.stillWaiting() {
		c.pass()
		return
	}
	f, err := s.unconnectedFlow(fd, info, netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()))
	if err != nil {
		c.fail(errnoOf(err))
		return
	}
	if _, err := f.pod.Write(payload); err != nil {
		c.fail(unix.ENETUNREACH)
		return
	}
	f.touch()
	c.ret(int64(len(payload)))
}

// unconnectedFlow finds or opens the flow of socket info to remote.
func (s *Supervisor) unconnectedFlow(fd int, info socketInfo, remote netip.AddrPort) (*udpFlow, error) {
	s.udpMu.Lock()
	defer s.udpMu.Unlock()
	k := flowKey{ino: info.ino, remote: remote}
	if f, ok := s.udpFlows[k]; ok && !f.isClosed() {
		return f, nil
	}
	app, err := boundAddr(fd)
	if err != nil {
		return nil, err
	}
	if app.Port() == 0 {
		// The kernel binds an unbound socket on its first send; do it now, since the replies
		// need an address to come back to.
		wildcard := netip.IPv4Unspecified()
		if info.family == unix.AF_INET6 {
			wildcard = netip.IPv6Unspecified()
		}
		if err := unix.Bind(fd, unixSockaddr(netip.AddrPortFrom(wildcard, 0), info.family)); err != nil {
			return nil, err
		}
		if app, err = boundAddr(fd); err != nil {
			return nil, err
		}
	}
	f, err := s.newUDPFlow(info.family, remote)
	if err != nil {
		return nil, err
	}
	f.app = app
	relay := key(f.relay.LocalAddr().(*net.UDPAddr).AddrPort())
	s.sockets.setSource(info.ino, relay, remote)
	s.udpFlows[k] = f
	s.runUDPFlow(f, func() {
		s.sockets.forgetSource(info.ino, relay)
		s.udpMu.Lock()
		if s.udpFlows[k] == f {
			delete(s.udpFlows, k)
		}
		s.udpMu.Unlock()
	})
	return f, nil
}

type flowKey struct {
	ino    uint64
	remote netip.AddrPort
}

// recvfrom(fd, buf, len, flags, src, addrlen) with a source buffer, on a socket that sent
// through the pod: received here so that the source of a reply reads as the destination the
// program sent to, not our relay. Other sockets run in the kernel.
func (s *Supervisor) recvfrom(c *call) {
	fd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	if !s.sockets.hasSources(info.ino) {
		c.pass()
		return
	}
	buf := make([]byte, min(c.arg(2), maxDatagram+1))
	n, from, errno := s.receive(c, fd, buf, int(c.arg(3)))
	if errno != 0 {
		if c.stillWaiting() {
			c.fail(errno)
		}
		return
	}
	src, _ := sockaddrOf(from)
	if remote, ok := s.sockets.source(info.ino, key(src)); ok {
		src = remote
	}
	if err := seccomp.WriteMem(c.tid(), c.arg(1), buf[:n]); err != nil {
		c.fail(unix.EFAULT)
		return
	}
	if err := c.writeSockaddr(4, 5, encodeInet(info.family, src)); err != nil {
		c.fail(unix.EFAULT)
		return
	}
	c.ret(int64(n))
}

// receive receives on the program's socket fd as the program's recvfrom would: at once (or
// EAGAIN) when the socket is non-blocking or flags say MSG_DONTWAIT, else waiting for a
// datagram while the program waits, up to the socket's receive timeout. A plain blocking
// receive here would hold on to the socket after the program is gone, and take a datagram
// meant for a later call.
func (s *Supervisor) receive(c *call, fd int, buf []byte, flags int) (int, unix.Sockaddr, unix.Errno) {
	blocking, deadline, errno := blockingCall(fd, flags)
	if errno != 0 {
		return 0, nil, errno
	}
	for {
		n, from, err := unix.Recvfrom(fd, buf, flags|unix.MSG_DONTWAIT)
		if err == nil {
			return n, from, 0
		}
		if err != unix.EAGAIN || !blocking {
			return 0, nil, errnoOf(err)
		}
		if errno := s.waitReadable(c, fd, deadline); errno != 0 {
			return 0, nil, errno
		}
	}
}

func (s *Supervisor) newUDPFlow(fam uint16, remote netip.AddrPort) (*udpFlow, error) {
	loopback := netip.MustParseAddr("127.0.0.1")
	network := "udp4"
	if fam == unix.AF_INET6 && s.relay.v6 != nil {
		loopback, network = netip.IPv6Loopback(), "udp6"
	}
	relay, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	pod, err := s.cfg.Dial(ctx, "udp", remote.String())
	cancel()
	if err != nil {
		relay.Close()
		return nil, err
	}
	return &udpFlow{relay: relay, pod: pod, last: time.Now(), done: make(chan struct{})}, nil
}

// relayAddr is where a program socket of family fam sends to reach the relay.
func (f *udpFlow) relayAddr(fam uint16) netip.AddrPort {
	a := f.relay.LocalAddr().(*net.UDPAddr).AddrPort()
	if fam == unix.AF_INET6 && a.Addr().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	return a
}

// runUDPFlow copies datagrams both ways until the flow idles out or either side fails.
func (s *Supervisor) runUDPFlow(f *udpFlow, onDone func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer onDone()
		defer f.close()
		go f.toProgram()
		go func() {
			select {
			case <-s.ctx.Done():
				f.close()
			case <-f.done:
			}
		}()
		buf := make([]byte, maxDatagram)
		for {
			_ = f.relay.SetReadDeadline(time.Now().Add(udpIdle))
			n, from, err := f.relay.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && !f.idle() {
					continue
				}
				return
			}
			if key(from) != key(f.app) {
				continue
			}
			if _, err := f.pod.Write(buf[:n]); err != nil {
				return
			}
			f.touch()
		}
	}()
}

// toProgram delivers the pod's datagrams to the program's socket.
func (f *udpFlow) toProgram() {
	defer f.close()
	buf := make([]byte, maxDatagram)
	to := f.deliveryAddr()
	for {
		n, err := f.pod.Read(buf)
		if err != nil {
			return
		}
		f.touch()
		if _, err := f.relay.WriteToUDPAddrPort(buf[:n], to); err != nil {
			return
		}
	}
}

// deliveryAddr is the program socket's address as the relay can send to it: a socket bound to
// the wildcard address is reached on loopback.
func (f *udpFlow) deliveryAddr() netip.AddrPort {
	addr := f.app.Addr().Unmap()
	if addr.IsUnspecified() {
		if f.relay.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Is6() {
			addr = netip.IPv6Loopback()
		} else {
			addr = netip.MustParseAddr("127.0.0.1")
		}
	}
	return netip.AddrPortFrom(addr, f.app.Port())
}

func (f *udpFlow) touch() {
	f.mu.Lock()
	f.last = time.Now()
	f.mu.Unlock()
}

func (f *udpFlow) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.last) >= udpIdle
}

func (f *udpFlow) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *udpFlow) close() {
	f.mu.Lock()
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	if !already {
		close(f.done)
		f.relay.Close()
		f.pod.Close()
	}
}

// boundAddr is a socket's local address.
func boundAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, ok := sockaddrOf(sa)
	if !ok {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	return a, nil
}
