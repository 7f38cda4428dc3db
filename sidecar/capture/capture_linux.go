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

// Capture copies the client side of each new connection to one TCP port.
type Capture struct {
	file *os.File
	ring *ring
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
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach the packet filter: %w", err)
	}
	r, err := newRing(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		_ = r.close()
		unix.Close(fd)
		return nil, fmt.Errorf("bind the packet socket: %w", err)
	}
	c := &Capture{file: os.NewFile(uintptr(fd), fmt.Sprintf("capture:%d", port)), ring: r, done: make(chan struct{})}
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
	// Only now: the reader used the ring until it returned.
	return errors.Join(err, c.ring.close())
}

func (c *Capture) read(a *assembler, log *slog.Logger) {
	defer a.close()
	raw, err := c.file.SyscallConn()
	if err != nil {
		log.Error("packet capture", "err", err)
		return
	}
	for {
		// The socket turns readable when the kernel hands a block over.
		if err := raw.Read(func(uintptr) bool { return c.ring.ready() }); err != nil {
			return // closed
		}
		now := time.Now()
		c.ring.drain(func(packet []byte) {
			if f, seq, flags, payload, ok := parseTCP(packet); ok {
				a.segment(f, seq, flags, payload, now)
			}
		})
		a.expire(now)
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

// filterProgram is a classic BPF program that keeps the packets of this network namespace's
// connections to port that the assembler needs (see tcpFilter). It drops at once what the
// namespace does not receive: a packet that loopback carries passes a packet socket twice, out
// and in, and the pod's own connections to another server's port go out only.
func filterProgram(port uint16) []bpf.Instruction {
	tcp := tcpFilter(port)
	return append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		// Not received: to tcp's last instruction, which drops.
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_HOST, SkipFalse: uint8(len(tcp) - 1)},
	}, tcp...)
}

// tcpFilter keeps the TCP packets to port that the assembler needs: those with a payload, a
// SYN, a FIN or a RST. The pure ACKs it drops are about half a short connection's packets. It
// knows IPv4 (first fragments or whole packets) and IPv6 with TCP as the first next header. The
// socket is SOCK_DGRAM, so a packet starts at its IP header. Its last instruction drops.
func tcpFilter(port uint16) []bpf.Instruction {
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
