// Package capture copies what clients send to a TCP port of this network namespace, from the
// packets the kernel hands a packet socket: it is beside the connections, never on their path,
// so the app's traffic does not wait for it, and the app sees its clients as they are.
package capture

import (
	"container/list"
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

// silentIdle stops following a connection whose client has sent no byte this long after its
// last packet (its SYN, mostly): a SYN alone, from a scan, a flood or a handshake never
// completed, or a connection opened ahead of its use, must not hold a place for 15 minutes.
// Clients send their first bytes within a round trip of the handshake.
const silentIdle = 10 * time.Second

// maxFlows bounds the connections followed at once: SYNs are cheap to send, and each copy
// costs a stream to the client and a connection to its program. Past it, a new connection
// takes the place of the one heard from least recently, first among those that sent no byte
// yet: were new connections refused instead, 4,096 silent ones would switch the mirror off.
const maxFlows = 4096

// assembler rebuilds, from a connection's segments as captured, the bytes its client sent, in
// order and once, and writes them to the writer open returns for it when its first byte
// comes: a SYN alone (a scan, a flood, a handshake never completed) costs no copy.
// Connections whose SYN it did not see (open before the capture began) are not copied. One
// goroutine uses it; writes must not block.
type assembler struct {
	open  func(Flow) io.WriteCloser
	flows map[Flow]*stream
	// silent holds the streams that have no byte yet, copying the others, each least recently
	// heard from first: what expires or gives way first.
	silent, copying list.List
}

type stream struct {
	flow     Flow
	elem     *list.Element  // in silent while w is nil, else in copying
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
			a.heard(s, now)
			return // the SYN again
		}
		if s != nil {
			a.end(s) // the client reused the tuple: the old connection is over
		}
		if len(a.flows) >= maxFlows {
			a.evict()
		}
		s = &stream{flow: f, next: seq + 1, lastSeen: now}
		s.elem = a.silent.PushBack(s)
		a.flows[f] = s
		seq++ // data on a SYN (TCP Fast Open) starts after it
	}
	if s == nil {
		return
	}
	a.heard(s, now)
	if flags&flagRST != 0 {
		a.end(s)
		return
	}
	if flags&flagFIN != 0 {
		s.fin, s.finSeq = true, seq+uint32(len(payload))
	}
	if len(payload) > 0 && s.w == nil {
		w := a.open(f)
		if w == nil {
			a.end(s) // not to be copied
			return
		}
		a.silent.Remove(s.elem)
		s.w, s.elem = w, a.copying.PushBack(s)
	}
	if len(payload) > 0 && !a.add(s, seq, payload) {
		a.end(s)
		return
	}
	if s.fin && s.next == s.finSeq {
		a.end(s)
	}
}

// heard notes a packet of s, seen at now.
func (a *assembler) heard(s *stream, now time.Time) {
	s.lastSeen = now
	a.listOf(s).MoveToBack(s.elem)
}

// listOf is the list that holds s.
func (a *assembler) listOf(s *stream) *list.List {
	if s.w == nil {
		return &a.silent
	}
	return &a.copying
}

// evict makes room for a new connection, at the expense of the one heard from least
// recently, a silent one first.
func (a *assembler) evict() {
	oldest := a.silent.Front()
	if oldest == nil {
		oldest = a.copying.Front()
	}
	if oldest != nil {
		a.end(oldest.Value.(*stream))
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

// end stops following a flow, and closes its copy if it began.
func (a *assembler) end(s *stream) {
	a.listOf(s).Remove(s.elem)
	if s.w != nil {
		_ = s.w.Close()
	}
	delete(a.flows, s.flow)
}

// expire stops following the connections that sent no byte since before now-silentIdle, and
// ends the copies of those silent since before now-flowIdle. It costs what it ends, so it may
// run at every batch of packets.
func (a *assembler) expire(now time.Time) {
	for _, l := range []struct {
		list *list.List
		idle time.Duration
	}{{&a.silent, silentIdle}, {&a.copying, flowIdle}} {
		for e := l.list.Front(); e != nil && now.Sub(e.Value.(*stream).lastSeen) > l.idle; e = l.list.Front() {
			a.end(e.Value.(*stream))
		}
	}
}

// endPort stops following the connections to port, and ends their copies.
func (a *assembler) endPort(port uint16) {
	for f, s := range a.flows {
		if f.Server.Port() == port {
			a.end(s)
		}
	}
}

// close ends every copy.
func (a *assembler) close() {
	for _, s := range a.flows {
		a.end(s)
	}
}
