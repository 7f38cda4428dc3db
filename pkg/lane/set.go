package lane

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// ackDelay is how long a small acknowledgement waits to be sent with others. It only holds
// memory a little longer: a sender waits for acknowledgements only when MaxUnacked bytes are
// out, and a quarter of that is acknowledged at once. On the port-forward path every
// acknowledgement is a packet through the API server's chain, so they are few.
const ackDelay = 50 * time.Millisecond

// endDelay spaces the lane ends sent on the lanes stream: an end goes out at once unless
// another went within endDelay, and then with those that come meanwhile, in one write. On the
// port-forward path each write is a QUIC packet, and its acknowledgement another, through the
// API server's chain, which a new connection per request otherwise pays for twice (each side's
// end); a lone end, as an interactive program's, is not delayed. Measured with 16 connections
// in flight, each for one request (docs/benchmarks.md).
const endDelay = 10 * time.Millisecond

// Set holds the lanes of one session and speaks for them on the session's QUIC lanes stream:
// it sends their acknowledgements (batched) and ends, and hands them the peer's ([Set.Handle]).
type Set struct {
	log  *slog.Logger
	send func(...wire.Message) error

	sendMu sync.Mutex // one message at a time on the stream

	mu       sync.Mutex
	lanes    map[uint64]*Lane
	lastID   uint64
	acks     []*Lane // lanes with an acknowledgement to send
	ackTimer *time.Timer
	// ends holds the lane ends waiting for endTimer, which fires endDelay after lastEnds,
	// when ends last went out.
	ends     []wire.Message
	endTimer *time.Timer
	lastEnds time.Time
	// early holds the peer's lane ends that came before their lanes were added: an end goes on
	// the lanes stream, a lane's first bytes and its ID on its own connection, and the peer
	// may send one before this end has read the other. Kept for earlyEndTTL.
	early  map[uint64]earlyEnd
	closed bool

	kick chan struct{}

	opened, resumed, refused, broken, reused atomic.Int64
	bytesIn, bytesOut                        atomic.Uint64
}

// NewSet returns an empty set whose messages go out with send, one call at a time, each call's
// messages in one write. Run must run for the acknowledgements and the ends that wait to go
// out.
func NewSet(send func(...wire.Message) error, log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{log: log, send: send, lanes: map[uint64]*Lane{}, kick: make(chan struct{}, 1)}
}

// Run sends the queued acknowledgements until ctx ends, then ends every lane: the session is
// gone, and with it what the lanes could resume by.
func (s *Set) Run(ctx context.Context) {
	defer s.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.mu.Lock()
		queued, msgs := s.acks, s.ends
		s.acks, s.ends = nil, nil
		if len(msgs) > 0 {
			s.lastEnds = time.Now()
		}
		s.mu.Unlock()
		var batch []wire.LaneAck
		for _, l := range queued {
			if n, ok := l.takeAck(); ok {
				batch = append(batch, wire.LaneAck{Lane: l.id, Received: n})
			}
		}
		for len(batch) > 0 {
			k := min(len(batch), wire.MaxLaneAcks)
			msgs = append(msgs, wire.LaneAcks{Acks: batch[:k]})
			batch = batch[k:]
		}
		if err := s.sendMessage(msgs...); err != nil {
			s.log.Debug("lane acknowledgements and ends not sent", "err", err)
		}
	}
}

// Reserve takes the next free ID for a lane to add later under it (AddID), once the lane is
// sure to be: the sidecar names a lane before its client asks what it carries.
func (s *Set) Reserve() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID++
	return s.lastID
}

// AddID registers a new lane under the ID the sidecar gave it.
func (s *Set) AddID(id uint64, opts Options) (*Lane, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errSetClosed
	}
	if _, ok := s.lanes[id]; ok || id == 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("lane %d already open", id)
	}
	l := newLane(id, s, opts)
	s.lanes[id] = l
	s.opened.Add(1)
	early, ok := s.early[id]
	delete(s.early, id)
	s.mu.Unlock()
	if ok {
		s.deliverEnd(l, early.LaneEnd)
	}
	return l, nil
}

// earlyEndTTL bounds how long an end waits for its lane: the peer sends it after the lane's
// first message on its connection, which this end reads within seconds or drops. Ends of
// lanes that already ended wait as long, in vain.
const earlyEndTTL = 30 * time.Second

// maxEarlyEnds bounds the ends waiting for their lanes: a peer may name lanes that never come.
const maxEarlyEnds = 1024

type earlyEnd struct {
	wire.LaneEnd
	at time.Time
}

// keepEarlyEnd keeps the end of a lane not added yet, for AddID; false when the set is closed
// or holds as many as it keeps.
func (s *Set) keepEarlyEnd(end wire.LaneEnd) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.lanes[end.Lane]; l != nil || s.closed {
		return false
	}
	now := time.Now()
	for id, e := range s.early {
		if now.Sub(e.at) > earlyEndTTL {
			delete(s.early, id)
		}
	}
	if len(s.early) >= maxEarlyEnds {
		return false
	}
	if s.early == nil {
		s.early = map[uint64]earlyEnd{}
	}
	s.early[end.Lane] = earlyEnd{LaneEnd: end, at: now}
	return true
}

// deliverEnd hands the peer's end to its lane, which it resets when the end contradicts it.
func (s *Set) deliverEnd(l *Lane, end wire.LaneEnd) {
	if err := l.peerEnd(end.Sent, end.Reset); err != nil {
		s.log.Warn("lane reset", "lane", end.Lane, "err", err)
		l.Abort()
	}
}

var errSetClosed = fmt.Errorf("the session's lanes are closed")

// Get returns the lane with id, or nil.
func (s *Set) Get(id uint64) *Lane {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lanes[id]
}

// Len is how many lanes are open.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lanes)
}

// Handle takes a message the peer sent on the lanes stream: LaneAcks or LaneEnd. An end that
// comes before its lane is added waits for it; acknowledgements for lanes not open are
// dropped (none can be due before a lane is added, so they are of lanes that ended); a
// message that contradicts a lane's counts resets that lane.
func (s *Set) Handle(msg wire.Message) error {
	switch m := msg.(type) {
	case wire.LaneAcks:
		for _, a := range m.Acks {
			if l := s.Get(a.Lane); l != nil {
				if err := l.peerAcked(a.Received); err != nil {
					s.log.Warn("lane reset", "lane", a.Lane, "err", err)
					l.Abort()
				}
			}
		}
	case wire.LaneEnd:
		l := s.Get(m.Lane)
		if l == nil && !s.keepEarlyEnd(m) {
			l = s.Get(m.Lane) // added meanwhile
		}
		if l != nil {
			s.deliverEnd(l, m)
		}
	default:
		return fmt.Errorf("unexpected %s on the lanes stream", msg.Type())
	}
	return nil
}

// Close ends every lane at once, without a word to the peer: the session ended.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	lanes := make([]*Lane, 0, len(s.lanes))
	for _, l := range s.lanes {
		lanes = append(lanes, l)
	}
	if s.ackTimer != nil {
		s.ackTimer.Stop()
	}
	if s.endTimer != nil {
		s.endTimer.Stop()
	}
	s.mu.Unlock()
	for _, l := range lanes {
		l.abort(errSessionEnded, false)
	}
}

var errSessionEnded = fmt.Errorf("lane ended with its session")

// Refused counts a lane connection refused (a bad ticket, a failed handshake).
func (s *Set) Refused() { s.refused.Add(1) }

// Reused counts a lane connection that carries another lane after its last one ended
// (Options.Recycle).
func (s *Set) Reused() { s.reused.Add(1) }

// Stats are a set's counts since it was made.
type Stats struct {
	Opened, Resumed, Refused, Broken int64
	// Reused counts the lanes that went on the connection of an earlier one.
	Reused int64
	// BytesIn and BytesOut are what the lanes read and sent, resent bytes included.
	BytesIn, BytesOut uint64
}

// Stats returns the counts so far.
func (s *Set) Stats() Stats {
	return Stats{
		Opened: s.opened.Load(), Resumed: s.resumed.Load(), Refused: s.refused.Load(), Broken: s.broken.Load(), Reused: s.reused.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
	}
}

func (s *Set) count(in, out uint64) {
	if in > 0 {
		s.bytesIn.Add(in)
	}
	if out > 0 {
		s.bytesOut.Add(out)
	}
}

func (s *Set) broke(l *Lane, err error) {
	s.broken.Add(1)
	s.log.Debug("lane connection broke", "lane", l.id, "err", err)
}

func (s *Set) resumedLane() { s.resumed.Add(1) }

func (s *Set) remove(l *Lane) {
	s.mu.Lock()
	if s.lanes[l.id] == l {
		delete(s.lanes, l.id)
	}
	s.mu.Unlock()
}

// ackUrgency says when a lane's acknowledgement goes out.
type ackUrgency int

const (
	ackLater ackUrgency = iota // within ackDelay, with the others
	// ackPaced goes as the lanes' notices do (sendNotice): the lane has all of its peer's
	// bytes, and the peer's lane finishes, freeing its connection for the next lane, only
	// once it has this acknowledgement.
	ackPaced
	ackNow // the peer's writes wait for it
)

// queueAck puts l in the queue of acknowledgements, to go out as when says.
func (s *Set) queueAck(l *Lane, when ackUrgency) {
	s.mu.Lock()
	s.acks = append(s.acks, l)
	now := when == ackNow
	switch {
	case when == ackPaced:
		now = s.paceLocked(time.Now())
	case when == ackLater && s.ackTimer == nil && !s.closed:
		s.ackTimer = time.AfterFunc(ackDelay, func() {
			s.mu.Lock()
			s.ackTimer = nil
			s.mu.Unlock()
			s.wake()
		})
	}
	s.mu.Unlock()
	if now {
		s.wake()
	}
}

// paceAck sends the queued acknowledgements as the lanes' notices go, rather than within
// ackDelay: one of them became final.
func (s *Set) paceAck() {
	s.mu.Lock()
	now := s.paceLocked(time.Now())
	s.mu.Unlock()
	if now {
		s.wake()
	}
}

func (s *Set) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sendEnd sends a lane's end: at once when it resets the lane or when no end went out within
// endDelay, else with the others that come until endDelay after the last ones.
func (s *Set) sendEnd(id, sent uint64, reset bool) {
	s.sendNotice(wire.LaneEnd{Lane: id, Sent: sent, Reset: reset}, reset)
}

// SendFree tells the peer that lane id's connection, recycled (Options.Recycle, Recycled),
// waits for another lane: the sidecar's word, sent as the lanes' ends are.
func (s *Set) SendFree(id uint64) { s.sendNotice(wire.LaneFree{Lane: id}, false) }

// sendNotice sends msg, a lane's end or the freeing of its connection: at once when urgent or
// when none went out within endDelay, else with the others that come until endDelay after the
// last ones.
func (s *Set) sendNotice(msg wire.Message, urgent bool) {
	s.mu.Lock()
	if urgent || s.closed || s.paceLocked(time.Now()) {
		s.mu.Unlock()
		if err := s.sendMessage(msg); err != nil {
			s.log.Debug("lane notice not sent", "type", msg.Type().String(), "err", err)
		}
		return
	}
	s.ends = append(s.ends, msg)
	s.mu.Unlock()
}

// paceLocked tells whether a notice may go out now: none went within endDelay, and none
// waits. Else it sees to it that the waiting ones, and this one, go endDelay after the last.
func (s *Set) paceLocked(now time.Time) bool {
	if s.endTimer == nil && len(s.ends) == 0 && now.Sub(s.lastEnds) >= endDelay {
		s.lastEnds = now
		return true
	}
	if s.endTimer == nil && !s.closed {
		s.endTimer = time.AfterFunc(s.lastEnds.Add(endDelay).Sub(now), func() {
			s.mu.Lock()
			s.endTimer = nil
			s.mu.Unlock()
			s.wake()
		})
	}
	return false
}

func (s *Set) sendMessage(ms ...wire.Message) error {
	if len(ms) == 0 {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.send(ms...)
}
