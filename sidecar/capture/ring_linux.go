package capture

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The receive ring (TPACKET_V3) that the kernel fills with the captured packets. It hands
// them over a block at a time: the reader wakes once per block, not once per packet, and
// reads no packet through a system call. At a thousand new connections a second, one wake-up
// and one read per packet kept the sidecar's goroutines switching threads for most of its CPU.
const (
	// ringBlockSize holds the largest packet (a 64 KiB segment that loopback's offloads made,
	// with its headers): a packet cannot span two blocks.
	ringBlockSize = 128 << 10
	// ringBlocks is how much the kernel can hold for us: a packet that does not fit is lost to
	// the copy (not to the connection), and the copy stops at the hole. Under a steady trickle
	// each block is handed over by ringRetireMillis with a few packets in it, so the count of
	// blocks, not their size, says how long the reader may be kept off a CPU: 64 blocks, a
	// quarter of a second (16 blocks of 1 MiB lost most copies at 1,000 new connections a
	// second on two busy cores). 8 MiB in all, as the socket buffer before the ring. The kernel
	// allocates it at once, while some port is mirrored, and does not charge it to the pod's
	// memory cgroup: it is node memory that no limit of the pod bounds, hence one ring for all
	// ports (Socket).
	ringBlocks = 64
	// ringFrameSize only has to be a valid TPACKET_V3 frame size: packets are packed in a
	// block whatever their size.
	ringFrameSize = 1 << 11
	// ringRetireMillis hands a block over this long after its first packet even if it is not
	// full: how far a copy may lag the connection it copies.
	ringRetireMillis = 4
)

// Offsets in the kernel's structures (linux/if_packet.h), which x/sys/unix declares but which
// are read here in place, in memory the kernel shares.
const (
	blockStatusOff = 8  // tpacket_block_desc.hdr.bh1.block_status
	blockNumOff    = 12 // .num_pkts
	blockFirstOff  = 16 // .offset_to_first_pkt
	pktNextOff     = 0  // tpacket3_hdr.tp_next_offset
	pktSnaplenOff  = 12 // .tp_snaplen
	pktMacOff      = 24 // .tp_mac: where the packet starts (its IP header, on a SOCK_DGRAM socket)
)

type ring struct {
	mem  []byte
	next int // the block the kernel hands over next
}

// newRing sets up a TPACKET_V3 receive ring on the packet socket fd, before it is bound.
func newRing(fd int) (*ring, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("packet socket version 3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     ringBlockSize,
		Block_nr:       ringBlocks,
		Frame_size:     ringFrameSize,
		Frame_nr:       ringBlockSize / ringFrameSize * ringBlocks,
		Retire_blk_tov: ringRetireMillis,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("packet receive ring: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the packet receive ring: %w", err)
	}
	return &ring{mem: mem}, nil
}

func (r *ring) close() error { return unix.Munmap(r.mem) }

// status is the word of block i that the kernel and this reader hand the block over with.
func (r *ring) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*ringBlockSize+blockStatusOff]))
}

// ready reports whether the kernel has handed the next block over.
func (r *ring) ready() bool {
	return atomic.LoadUint32(r.status(r.next))&unix.TP_STATUS_USER != 0
}

// drain calls fn with each packet of the next block, which must be ready, then gives the block
// back to the kernel. A packet is only valid during its call.
func (r *ring) drain(fn func(packet []byte)) {
	block := r.mem[r.next*ringBlockSize : (r.next+1)*ringBlockSize]
	n := binary.NativeEndian.Uint32(block[blockNumOff:])
	off := int(binary.NativeEndian.Uint32(block[blockFirstOff:]))
	for range n {
		// The kernel wrote these offsets; checking them keeps a surprise from being a panic.
		if off < 0 || off+unix.SizeofTpacket3Hdr > len(block) {
			break
		}
		h := block[off:]
		start := int(binary.NativeEndian.Uint16(h[pktMacOff:]))
		end := start + int(binary.NativeEndian.Uint32(h[pktSnaplenOff:]))
		if end <= len(h) {
			fn(h[start:end])
		}
		next := int(binary.NativeEndian.Uint32(h[pktNextOff:]))
		if next == 0 {
			break
		}
		off += next
	}
	atomic.StoreUint32(r.status(r.next), unix.TP_STATUS_KERNEL)
	r.next = (r.next + 1) % ringBlocks
}
