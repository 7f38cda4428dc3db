package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reader is a Socket's packet socket while some port is captured: its receive ring, and the
// goroutine that reads it.
type reader struct {
	file *os.File
	ring *ring
	done chan struct{} // closed when the goroutine returns
	// closing holds the ports whose copies the goroutine is to end; under the Socket's mu.
	closing []*Capture
	stopped atomic.Bool // close was called: the read that fails is not an error
}

// openReader opens a packet socket that keeps the packets tcpFilter(ports) keeps, and starts
// read on it.
func openReader(ports []uint16, read func(*reader)) (*reader, error) {
	// Protocol 0 receives nothing until the bind below, so no packet passes before the filter
	// is in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := setFilter(fd, ports); err != nil {
		unix.Close(fd)
		return nil, err
	}
	ring, err := newRing(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		_ = ring.close()
		unix.Close(fd)
		return nil, fmt.Errorf("bind the packet socket: %w", err)
	}
	r := &reader{file: os.NewFile(uintptr(fd), "capture"), ring: ring, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		read(r)
	}()
	return r, nil
}

// setFilter attaches tcpFilter(ports) to the packet socket fd, in place of the one it had: the
// kernel swaps them at once, so no packet goes unfiltered.
func setFilter(fd int, ports []uint16) error {
	prog, err := portsFilter(ports)
	if err != nil {
		return err
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
		return fmt.Errorf("attach the packet filter: %w", err)
	}
	return nil
}

// filter makes the socket keep the packets of ports.
func (r *reader) filter(ports []uint16) error {
	raw, err := r.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("packet filter: %w", err)
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = setFilter(int(fd), ports) }); err != nil {
		return fmt.Errorf("packet filter: %w", err)
	}
	return ferr
}

// wake makes a read in progress return at once with os.ErrDeadlineExceeded.
func (r *reader) wake() { _ = r.file.SetReadDeadline(time.Now()) }

// close stops the goroutine, which ends every copy, and frees the ring.
func (r *reader) close() error {
	r.stopped.Store(true)
	err := r.file.Close()
	<-r.done
	// Only now: the goroutine used the ring until it returned.
	return errors.Join(err, r.ring.close())
}

// next waits until the kernel hands a block over, or until wake.
func (r *reader) next(raw syscall.RawConn) (woken bool, err error) {
	// The socket turns readable when the kernel hands a block over.
	err = raw.Read(func(uintptr) bool { return r.ring.ready() })
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Before whoever woke us is served, so that a later wake-up is not lost.
		_ = r.file.SetReadDeadline(time.Time{})
		return true, nil
	}
	return false, err
}

// parseTCP reads the flow, sequence number, flags and payload of an IPv4 or IPv6 TCP packet
// (what the filter lets through).
func parseTCP(p []byte) (f Flow, seq uint32, flags uint8, payload []byte, ok bool) {
	if len(p) < 1 {
		return
	}
	var src, dst netip.Addr
	var tcp []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return
		}
		ihl, total := int(p[0]&0x0f)*4, int(binary.BigEndian.Uint16(p[2:4]))
		if ihl < 20 || total < ihl || total > len(p) {
			return
		}
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		tcp = p[ihl:total]
	case 6:
		if len(p) < 40 {
			return
		}
		end := 40 + int(binary.BigEndian.Uint16(p[4:6]))
		if end > len(p) {
			return
		}
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		tcp = p[40:end]
	default:
		return
	}
	if len(tcp) < 20 {
		return
	}
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return
	}
	f = Flow{
		Client: netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(tcp[0:2])),
		Server: netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(tcp[2:4])),
	}
	return f, binary.BigEndian.Uint32(tcp[4:8]), tcp[13], tcp[off:], true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
