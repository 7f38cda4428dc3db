package redirect

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (and IP6T_SO_ORIGINAL_DST, the same number): where a
// redirected connection was going before the redirect.
const soOriginalDst = 80

// OriginalDst returns the destination a redirected connection had: the pod's address and the
// subscribed port.
func OriginalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	var out netip.AddrPort
	var opErr error
	err = raw.Control(func(fd uintptr) {
		var sa [unix.SizeofSockaddrInet6]byte
		size := uint32(len(sa))
		level := unix.SOL_IP
		if !local.Addr().Unmap().Is4() {
			level = unix.SOL_IPV6
		}
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
			uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			opErr = errno
			return
		}
		port := binary.BigEndian.Uint16(sa[2:4])
		if level == unix.SOL_IP {
			out = netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
		} else {
			out = netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port)
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	return out, nil
}
