// Package capture copies what clients send to a TCP port of this network namespace, from the
// packets the kernel hands a packet socket: it is beside the connections, never on their path,
// so the app's traffic does not wait for it, and the app sees its clients as they are.
package capture

import (
	"io"
	"net/netip"
	"slices"
	"time"
)

// Flow is one TCP connection, as its client opened it to the server.
type Flow struct {
	Client, Server netip.AddrPort
}

// TCP flags the assembler looks at.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// Bounds of what the assembler holds for one connection while a hole waits to be filled (a
// segment lost to our socket, or reordered): past them the copy is given up, the connection
// itself is not ours to slow.
const (
	maxPendingBytes    = 1 << 20
	maxPendingSegments = 256
)

// flowIdle ends a copy whose client has sent no packet for this long: its FIN or RST was lost
// to our socket, or it went away. Only the client's packets are seen, so a keep-alive
// connection idle for longer is no longer copied when it speaks again; it is long, as
// connection pools keep idle connections for minutes.
const flowIdle = 15 * time.Minute

// maxFlows bounds the connections followed at once: SYNs are cheap to send, and each copy
// costs a stream to the client and a connection to its program. Past it, new connections are
// not copied.
const maxFlows = 4096

// assembler rebuilds, from a connection's segments as captured, the bytes its client sent, in
// order and once, and writes them to the writer open returns for it when its first byte
// comes: a SYN alone (a scan, a flood, a handshake never completed) costs no copy.
// Connections whose SYN it did not see (open before the capture began) are not copied. One
// goroutine uses it; writes must not block.
type assembler struct {
	open  func(Flow) io.WriteCloser
	flows map[Flow]*stream
}

type stream struct {
	w        io.WriteCloser // nil until the first byte
	next     uint32         // the sequence number of the next byte to write
	pending  []segment
	held     int // bytes in pending
	fin      bool
	finSeq   uint32
	lastSeen time.Time
}

type segment struct {
	seq  uint32
	data []byte
}

func newAssembler(open func(Flow) io.WriteCloser) *assembler {
	return &assembler{open: open, flows: map[Flow]*stream{}}
}

// before reports whether sequence number a comes before b, modulo 2^32 (RFC 9293 3.4).
func before(a, b uint32) bool { return int32(a-b) < 0 }

// segment takes one captured segment of flow, seen at now.
func (a *assembler) segment(f Flow, seq uint32, flags uint8, payload []byte, now time.Time) {
	s := a.flows[f]
	if flags&flagSYN != 0 && flags&flagACK == 0 {
		if s != nil && s.next == seq+1 {
			s.lastSeen = now
			return // the SYN again
		}
		if s != nil {
			a.end(f, s) // the client reused the tuple: the old connection is over
		}
		if len(a.flows) >= maxFlows {
			return
		}
		s = &stream{next: seq + 1, lastSeen: now}
		a.flows[f] = s
		seq++ // data on a SYN (TCP Fast Open) starts after it
	}
	if s == nil {
		return
	}
	s.lastSeen = now
	if flags&flagRST != 0 {
		a.end(f, s)
		return
	}
	if flags&flagFIN != 0 {
		s.fin, s.finSeq = true, seq+uint32(len(payload))
	}
	if len(payload) > 0 && s.w == nil {
		if s.w = a.open(f); s.w == nil {
			delete(a.flows, f) // not to be copied
			return
		}
	}
	if len(payload) > 0 && !a.add(s, seq, payload) {
		a.end(f, s)
		return
	}
	if s.fin && s.next == s.finSeq {
		a.end(f, s)
	}
}

// add writes payload if it is next, else holds it; it reports false when the stream must be
// given up.
func (a *assembler) add(s *stream, seq uint32, payload []byte) bool {
	if !s.write(seq, payload) {
		if s.held+len(payload) > maxPendingBytes || len(s.pending) >= maxPendingSegments {
			return false
		}
		s.pending = append(s.pending, segment{seq: seq, data: slices.Clone(payload)})
		s.held += len(payload)
		return true
	}
	// A hole was filled: what was held may follow now.
	for progress := true; progress; {
		progress = false
		for i := 0; i < len(s.pending); i++ {
			p := s.pending[i]
			end := p.seq + uint32(len(p.data))
			if before(s.next, p.seq) {
				continue // still after a hole
			}
			s.pending = slices.Delete(s.pending, i, i+1)
			s.held -= len(p.data)
			i--
			if before(s.next, end) {
				s.write(p.seq, p.data)
				progress = true
			}
		}
	}
	return true
}

// write writes what of data, starting at seq, is new and next; it reports false when data
// starts after a hole.
func (s *stream) write(seq uint32, data []byte) bool {
	if before(s.next, seq) {
		return false
	}
	skip := s.next - seq // already written: a retransmission
	if uint64(skip) >= uint64(len(data)) {
		return true
	}
	data = data[skip:]
	_, _ = s.w.Write(data)
	s.next += uint32(len(data))
	return true
}

// end closes a flow's copy, if it began.
func (a *assembler) end(f Flow, s *stream) {
	if s.w != nil {
		_ = s.w.Close()
	}
	delete(a.flows, f)
}

// expire ends the copies of connections silent since before now-flowIdle.
func (a *assembler) expire(now time.Time) {
	for f, s := range a.flows {
		if now.Sub(s.lastSeen) > flowIdle {
			a.end(f, s)
		}
	}
}

// close ends every copy.
func (a *assembler) close() {
	for f, s := range a.flows {
		a.end(f, s)
	}
}
