package incoming

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// bindLoopback binds the socket fd to addr (the loopback address of the listener it will
// connect to) on a port of the kernel's choice, and says which.
func bindLoopback(fd int, addr netip.Addr) (netip.AddrPort, error) {
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: addr.As16()}
	if addr.Is4() {
		sa = &unix.SockaddrInet4{Addr: addr.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return netip.AddrPort{}, err
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(b.Addr), uint16(b.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(b.Addr), uint16(b.Port)), nil
	}
	return netip.AddrPort{}, unix.EAFNOSUPPORT
}
