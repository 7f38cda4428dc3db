package capture

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// maxPorts bounds the ports one socket captures: its filter compares a packet's port with each
// in turn, and a classic BPF jump reaches at most 255 instructions ahead.
const maxPorts = 64

// portsFilter is filterProgram(ports) assembled for SO_ATTACH_FILTER.
func portsFilter(ports []uint16) (*unix.SockFprog, error) {
	insns, err := bpf.Assemble(filterProgram(ports))
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
// connections to ports that the assembler needs (see tcpFilter). It drops at once what the
// namespace does not receive: a packet that loopback carries passes a packet socket twice, out
// and in, and the pod's own connections to another server's port go out only.
func filterProgram(ports []uint16) []bpf.Instruction {
	tcp := tcpFilter(ports)
	return append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		// Not received: to tcp's last instruction, which drops.
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_HOST, SkipFalse: uint8(len(tcp) - 1)},
	}, tcp...)
}

// tcpFilter keeps the TCP packets to ports (at most maxPorts) that the assembler needs: those
// with a payload, a SYN, a FIN or a RST. The pure ACKs it drops are about half a short
// connection's packets. It knows IPv4 (first fragments or whole packets) and IPv6 with TCP as
// the first next header. The socket is SOCK_DGRAM, so a packet starts at its IP header. Its
// last instruction drops.
func tcpFilter(ports []uint16) []bpf.Instruction {
	const drop, keep = 0, 1 << 18 // a return value is how many bytes of the packet to keep
	const finSynRst = flagFIN | flagSYN | flagRST
	ports = slices.Compact(slices.Sorted(slices.Values(ports)))
	if len(ports) == 0 {
		return []bpf.Instruction{bpf.RetConstant{Val: drop}}
	}
	// Both IP versions go on to the TCP header at tcpAt with X its offset and scratch word 0
	// the segment's length; the port list comes next, and its length moves what follows it.
	n := len(ports)
	const v6At, tcpAt = 12, 18
	flagsAt := tcpAt + 1 + n
	keepAt := flagsAt + 8
	dropAt := keepAt + 1
	// to is the skip from the instruction at from to the one at target.
	to := func(from, target int) uint8 { return uint8(target - from - 1) }
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1},
		/* 1 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4}, // the IP version
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: to(2, v6At)},
		/* 3 */ bpf.LoadAbsolute{Off: 9, Size: 1}, // IPv4 protocol
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: to(4, dropAt)},
		/* 5 */ bpf.LoadAbsolute{Off: 6, Size: 2}, // flags and fragment offset
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: to(6, dropAt)}, // a later fragment
		/* 7 */ bpf.LoadMemShift{Off: 0}, // X = the IPv4 header's length
		/* 8 */ bpf.LoadAbsolute{Off: 2, Size: 2}, // IPv4 total length
		/* 9 */ bpf.ALUOpX{Op: bpf.ALUOpSub}, // less the IPv4 header: the TCP segment's length
		/* 10 */ bpf.StoreScratch{Src: bpf.RegA, N: 0},
		/* 11 */ bpf.Jump{Skip: uint32(to(11, tcpAt))},
		/* 12 v6At */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: to(v6At, dropAt)},
		/* 13 */ bpf.LoadAbsolute{Off: 6, Size: 1}, // IPv6 next header
		/* 14 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: to(14, dropAt)},
		/* 15 */ bpf.LoadAbsolute{Off: 4, Size: 2}, // IPv6 payload length: the TCP segment's
		/* 16 */ bpf.StoreScratch{Src: bpf.RegA, N: 0},
		/* 17 */ bpf.LoadConstant{Dst: bpf.RegX, Val: 40}, // X = the IPv6 header's length
		/* 18 tcpAt */ bpf.LoadIndirect{Off: 2, Size: 2}, // TCP destination port
	}
	for i, port := range ports {
		at := tcpAt + 1 + i
		jump := bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipTrue: to(at, flagsAt)}
		if i == n-1 {
			jump.SkipFalse = to(at, dropAt)
		}
		prog = append(prog, jump)
	}
	return append(prog,
		/* flagsAt */ bpf.LoadIndirect{Off: 13, Size: 1}, // TCP flags
		/* +1 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: finSynRst, SkipTrue: to(flagsAt+1, keepAt)},
		/* +2 */ bpf.LoadIndirect{Off: 12, Size: 1}, // TCP data offset, in words, in the top nibble
		/* +3 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* +4 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		/* +5 */ bpf.TAX{}, // X = the TCP header's length
		/* +6 */ bpf.LoadScratch{Dst: bpf.RegA, N: 0},
		/* +7 */ bpf.JumpIfX{Cond: bpf.JumpGreaterThan, SkipFalse: 1}, // a payload?
		/* keepAt */ bpf.RetConstant{Val: keep},
		/* dropAt */ bpf.RetConstant{Val: drop},
	)
}
