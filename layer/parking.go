//go:build linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parking holds the program's non-blocking sockets "in progress" while the pod dials for them
// (see connectParked). A socket is parked by connecting it to a loopback listener whose accept
// queue is full: the kernel drops its SYN, so the socket sits in SYN_SENT, exactly the state of
// a connect under way (no EPOLLOUT, SO_ERROR 0, EALREADY, EAGAIN on read and write), and
// retransmits the SYN now and then into the same full queue. When the pod's connection is
// there, a socket of the supervisor bound to the listener's port connects to the parked socket:
// their SYNs cross (a TCP simultaneous open), and the parked socket becomes ESTABLISHED with the
// supervisor's socket as its peer, which the relay then joins to the pod's connection.
type parking struct {
	v4, v6 *parkingLot // v6 nil where the machine has no IPv6 loopback
}

// parkingLot is one family's listener. filler is the connection that fills its accept queue
// (backlog 0 holds one), never accepted.
type parkingLot struct {
	listener int
	filler   *net.TCPConn
	addr     netip.AddrPort
}

func newParking() (*parking, error) {
	v4, err := newParkingLot(unix.AF_INET, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		return nil, fmt.Errorf("layer parking: %w", err)
	}
	p := &parking{v4: v4}
	if v6, err := newParkingLot(unix.AF_INET6, netip.IPv6Loopback()); err == nil {
		p.v6 = v6
	}
	return p, nil
}

func newParkingLot(family int, ip netip.Addr) (*parkingLot, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	lot := &parkingLot{listener: fd}
	// SO_REUSEPORT lets the supervisor's joining sockets bind the listener's port too.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		lot.close()
		return nil, err
	}
	if err := unix.Bind(fd, unixSockaddr(netip.AddrPortFrom(ip, 0), uint16(family))); err != nil {
		lot.close()
		return nil, err
	}
	if err := unix.Listen(fd, 0); err != nil {
		lot.close()
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		lot.close()
		return nil, err
	}
	lot.addr, _ = sockaddrOf(sa)
	filler, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(lot.addr))
	if err != nil {
		lot.close()
		return nil, err
	}
	lot.filler = filler
	return lot, nil
}

func (lot *parkingLot) close() {
	if lot.filler != nil {
		lot.filler.Close()
	}
	unix.Close(lot.listener)
}

func (p *parking) close() {
	p.v4.close()
	if p.v6 != nil {
		p.v6.close()
	}
}

// addrFor is the listener a socket of family parks at: an IPv6 socket takes the IPv6 one, or
// the IPv4 one v4-mapped (as tcpRelay.addrFor).
func (p *parking) addrFor(family uint16) netip.AddrPort {
	if family != unix.AF_INET6 {
		return p.v4.addr
	}
	if p.v6 != nil {
		return p.v6.addr
	}
	return netip.AddrPortFrom(netip.AddrFrom16(p.v4.addr.Addr().As16()), p.v4.addr.Port())
}

// park connects the program's non-blocking socket fd to the full listener and returns the
// socket's local address, which names it until it is joined.
func (p *parking) park(fd int, family uint16) (netip.AddrPort, error) {
	err := unix.Connect(fd, unixSockaddr(p.addrFor(family), family))
	if !errors.Is(err, unix.EINPROGRESS) {
		if err == nil {
			err = errors.New("the parking listener accepted a connection") // its queue is full
		}
		return netip.AddrPort{}, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, ok := sockaddrOf(sa)
	if !ok {
		return netip.AddrPort{}, errors.New("socket has no inet address")
	}
	return local, nil
}

// stillParked tells whether the program's socket fd is still the one parked at local: in
// SYN_SENT at that address. The program may have dropped the connect meanwhile (connect with
// AF_UNSPEC), and another socket taken the address; the supervisor holds fd open, so a socket
// that is still there is still the program's.
func stillParked(fd int, local netip.AddrPort) bool {
	if !inProgress(fd) {
		return false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	now, ok := sockaddrOf(sa)
	return ok && now == local
}

// join connects a socket of the supervisor from the parking listener's address to the parked
// socket at local: the simultaneous open completes both, and the program's connect succeeds.
func (p *parking) join(ctx context.Context, family uint16, local netip.AddrPort) (*net.TCPConn, error) {
	from := p.addrFor(family)
	d := net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from.Addr().Unmap(), from.Port())),
		Control: func(_, _ string, raw syscall.RawConn) error {
			var err error
			if cerr := raw.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); cerr != nil {
				return cerr
			}
			return err
		},
	}
	conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(local.Addr().Unmap(), local.Port()).String())
	if err != nil {
		return nil, err
	}
	return conn.(*net.TCPConn), nil
}

// disconnect ends the parked connect of the program's socket fd (connect with AF_UNSPEC): the
// socket is closed, with ECONNRESET pending, which wakes the program's poll with EPOLLERR.
// What the program reads of the error is the pod's errno, answered by the supervisor (see
// failures).
func disconnect(fd int) error {
	sa := unix.RawSockaddr{Family: unix.AF_UNSPEC}
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	if errno != 0 {
		return errno
	}
	return nil
}
