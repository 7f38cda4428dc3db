package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// readBuffer holds one captured packet: loopback's MTU is 64 KiB, and receive offloads merge
// segments into packets as large.
const readBuffer = 1 << 18

// socketBuffer is how much the kernel queues for us: a packet that does not fit is lost to
// the copy (not to the connection), and the copy stops at the hole.
const socketBuffer = 8 << 20

// Capture copies the client side of each new connection to one TCP port.
type Capture struct {
	file *os.File
	done chan struct{}
}

// Listen starts copying, to the writer open returns for each connection to port (nil skips
// the connection), what the connection's client sends: every connection this network
// namespace receives on port from the moment Listen returns, whatever its address (the pod's,
// or loopback from the pod's other containers). It needs CAP_NET_RAW. Writes must not block:
// they happen on the one goroutine that reads the packets.
func Listen(port uint16, open func(Flow) io.WriteCloser, log *slog.Logger) (*Capture, error) {
	// Protocol 0 receives nothing until the bind below, so no packet passes before the filter
	// is in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	prog, err := portFilter(port)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Past the system's limit (net.core.rmem_max) only with CAP_NET_ADMIN; else as far as
	// that limit.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach the packet filter: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind the packet socket: %w", err)
	}
	c := &Capture{file: os.NewFile(uintptr(fd), fmt.Sprintf("capture:%d", port)), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.read(newAssembler(open), log)
	}()
	return c, nil
}

// Close stops the capture and ends every copy.
func (c *Capture) Close() error {
	err := c.file.Close()
	<-c.done
	return err
}

func (c *Capture) read(a *assembler, log *slog.Logger) {
	defer a.close()
	raw, err := c.file.SyscallConn()
	if err != nil {
		log.Error("packet capture", "err", err)
		return
	}
	buf := make([]byte, readBuffer)
	lastExpiry := time.Now()
	for {
		var n int
		var from unix.Sockaddr
		var readErr error
		err := raw.Read(func(fd uintptr) bool {
			n, from, readErr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(readErr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if readErr != nil {
			if !errors.Is(readErr, unix.EINTR) {
				log.Warn("packet capture", "err", readErr)
			}
			continue
		}
		// Only what this namespace receives: a packet that loopback carries passes twice, out
		// and in, and the pod's own connections to another server's port P go out only.
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_HOST {
			continue
		}
		now := time.Now()
		if f, seq, flags, payload, ok := parseTCP(buf[:n]); ok {
			a.segment(f, seq, flags, payload, now)
		}
		if now.Sub(lastExpiry) > flowIdle/4 {
			a.expire(now)
			lastExpiry = now
		}
	}
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

// portFilter is filterProgram(port) assembled for SO_ATTACH_FILTER.
func portFilter(port uint16) (*unix.SockFprog, error) {
	insns, err := bpf.Assemble(filterProgram(port))
	if err != nil {
		return nil, fmt.Errorf("packet filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(insns))
	for i, in := range insns {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}, nil
}

// filterProgram is a classic BPF program that keeps the TCP packets to port that the assembler
// needs: those with a payload, a SYN, a FIN or a RST. The pure ACKs it drops are about half a
// short connection's packets, and each kept packet costs the sidecar a wake-up and a read. It
// knows IPv4 (first fragments or whole packets) and IPv6 with TCP as the first next header. The
// socket is SOCK_DGRAM, so a packet starts at its IP header.
func filterProgram(port uint16) []bpf.Instruction {
	const drop, keep = 0, 1 << 18 // a return value is how many bytes of the packet to keep
	const finSynRst = flagFIN | flagSYN | flagRST
	// The jumps below count the instructions they skip; the numbers are the targets.
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1},
		/* 1 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4}, // the IP version
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 18}, // not 4: to 21
		/* 3 */ bpf.LoadAbsolute{Off: 9, Size: 1}, // IPv4 protocol
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: 30},
		/* 5 */ bpf.LoadAbsolute{Off: 6, Size: 2}, // flags and fragment offset
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 28}, // a later fragment
		/* 7 */ bpf.LoadMemShift{Off: 0}, // X = the IPv4 header's length
		/* 8 */ bpf.LoadIndirect{Off: 2, Size: 2}, // TCP destination port
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 25},
		/* 10 */ bpf.LoadIndirect{Off: 13, Size: 1}, // TCP flags
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: finSynRst, SkipTrue: 22},
		/* 12 */ bpf.LoadAbsolute{Off: 2, Size: 2}, // IPv4 total length
		/* 13 */ bpf.ALUOpX{Op: bpf.ALUOpSub}, // less the IPv4 header: the TCP segment's length
		/* 14 */ bpf.StoreScratch{Src: bpf.RegA, N: 0},
		/* 15 */ bpf.LoadIndirect{Off: 12, Size: 1}, // TCP data offset, in words, in the top nibble
		/* 16 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 17 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		/* 18 */ bpf.TAX{}, // X = the TCP header's length
		/* 19 */ bpf.LoadScratch{Dst: bpf.RegA, N: 0},
		/* 20 */ bpf.JumpIfX{Cond: bpf.JumpGreaterThan, SkipTrue: 13, SkipFalse: 14}, // a payload?
		/* 21 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 13},
		/* 22 */ bpf.LoadAbsolute{Off: 6, Size: 1}, // IPv6 next header
		/* 23 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: 11},
		/* 24 */ bpf.LoadAbsolute{Off: 42, Size: 2}, // TCP destination port
		/* 25 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 9},
		/* 26 */ bpf.LoadAbsolute{Off: 53, Size: 1}, // TCP flags
		/* 27 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: finSynRst, SkipTrue: 6},
		/* 28 */ bpf.LoadAbsolute{Off: 52, Size: 1}, // TCP data offset
		/* 29 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 30 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		/* 31 */ bpf.TAX{},
		/* 32 */ bpf.LoadAbsolute{Off: 4, Size: 2}, // IPv6 payload length: the TCP segment's
		/* 33 */ bpf.JumpIfX{Cond: bpf.JumpGreaterThan, SkipFalse: 1}, // a payload?
		/* 34 */ bpf.RetConstant{Val: keep},
		/* 35 */ bpf.RetConstant{Val: drop},
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
