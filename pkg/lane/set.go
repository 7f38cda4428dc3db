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

// Set holds the lanes of one session and speaks for them on the session's QUIC lanes stream:
// it sends their acknowledgements (batched) and ends, and hands them the peer's ([Set.Handle]).
type Set struct {
	log  *slog.Logger
	send func(wire.Message) error

	sendMu sync.Mutex // one message at a time on the stream

	mu       sync.Mutex
	lanes    map[uint64]*Lane
	lastID   uint64
	acks     []*Lane // lanes with an acknowledgement to send
	ackTimer *time.Timer
	closed   bool

	kick chan struct{}

	opened, resumed, refused, broken atomic.Int64
	bytesIn, bytesOut                atomic.Uint64
}

// NewSet returns an empty set whose messages go out with send, one at a time. Run must run for
// the acknowledgements to go out.
func NewSet(send func(wire.Message) error, log *slog.Logger) *Set {
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
		queued := s.acks
		s.acks = nil
		s.mu.Unlock()
		var batch []wire.LaneAck
		for _, l := range queued {
			if n, ok := l.takeAck(); ok {
				batch = append(batch, wire.LaneAck{Lane: l.id, Received: n})
			}
		}
		for len(batch) > 0 {
			k := min(len(batch), wire.MaxLaneAcks)
			if err := s.sendMessage(wire.LaneAcks{Acks: batch[:k]}); err != nil {
				s.log.Debug("lane acknowledgements not sent", "err", err)
			}
			batch = batch[k:]
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
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSetClosed
	}
	if _, ok := s.lanes[id]; ok || id == 0 {
		return nil, fmt.Errorf("lane %d already open", id)
	}
	l := newLane(id, s, opts)
	s.lanes[id] = l
	s.opened.Add(1)
	return l, nil
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

// Handle takes a message the peer sent on the lanes stream: LaneAcks or LaneEnd. A message
// about a lane that already ended is dropped; one that contradicts a lane's counts resets
// that lane.
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
		if l := s.Get(m.Lane); l != nil {
			if err := l.peerEnd(m.Sent, m.Reset); err != nil {
				s.log.Warn("lane reset", "lane", m.Lane, "err", err)
				l.Abort()
			}
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
	s.mu.Unlock()
	for _, l := range lanes {
		l.abort(errSessionEnded, false)
	}
}

var errSessionEnded = fmt.Errorf("lane ended with its session")

// Refused counts a lane connection refused (a bad ticket, a failed handshake).
func (s *Set) Refused() { s.refused.Add(1) }

// Stats are a set's counts since it was made.
type Stats struct {
	Opened, Resumed, Refused, Broken int64
	// BytesIn and BytesOut are what the lanes read and sent, resent bytes included.
	BytesIn, BytesOut uint64
}

// Stats returns the counts so far.
func (s *Set) Stats() Stats {
	return Stats{
		Opened: s.opened.Load(), Resumed: s.resumed.Load(), Refused: s.refused.Load(), Broken: s.broken.Load(),
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

// queueAck puts l in the queue of acknowledgements, sent at once when urgent and otherwise
// within ackDelay.
func (s *Set) queueAck(l *Lane, urgent bool) {
	s.mu.Lock()
	s.acks = append(s.acks, l)
	if !urgent && s.ackTimer == nil && !s.closed {
		s.ackTimer = time.AfterFunc(ackDelay, func() {
			s.mu.Lock()
			s.ackTimer = nil
			s.mu.Unlock()
			s.wake()
		})
	}
	s.mu.Unlock()
	if urgent {
		s.wake()
	}
}

func (s *Set) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Set) sendEnd(id, sent uint64, reset bool) {
	if err := s.sendMessage(wire.LaneEnd{Lane: id, Sent: sent, Reset: reset}); err != nil {
		s.log.Debug("lane end not sent", "lane", id, "err", err)
	}
}

func (s *Set) sendMessage(m wire.Message) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.send(m)
}
