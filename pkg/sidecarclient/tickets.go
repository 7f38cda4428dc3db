package sidecarclient

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	// ticketBatch is how many lane tickets one request asks for.
	ticketBatch = 64
	// ticketLow is when the next batch is asked for, before the last ticket is gone.
	ticketLow = 16
)

// errNoTickets says the sidecar issues no more tickets for now.
var errNoTickets = errors.New("the sidecar issued no lane ticket")

// ticketStore holds the lane tickets the sidecar issued and not yet used, and asks for more.
type ticketStore struct {
	send func(...wire.Message) error

	mu     sync.Mutex
	held   []heldTicket
	asking bool // a request is out
	// dryUntil: the sidecar answered with no ticket (the session holds its most), so none is
	// asked for before then.
	dryUntil time.Time
	changed  chan struct{} // closed when tickets arrive or the stream fails
	err      error
}

type heldTicket struct {
	t     wire.LaneTicket
	until time.Time
}

func newTicketStore(send func(...wire.Message) error) *ticketStore {
	return &ticketStore{send: send, changed: make(chan struct{})}
}

// take returns an unexpired ticket, waiting for a batch when none is held.
func (s *ticketStore) take(ctx context.Context) (wire.LaneTicket, error) {
	for {
		s.mu.Lock()
		now := time.Now()
		for len(s.held) > 0 && now.After(s.held[0].until) {
			s.held = s.held[1:]
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return wire.LaneTicket{}, err
		}
		var t *heldTicket
		if len(s.held) > 0 {
			t = &s.held[0]
			s.held = s.held[1:]
		} else if now.Before(s.dryUntil) {
			s.mu.Unlock()
			return wire.LaneTicket{}, errNoTickets
		}
		ask := len(s.held) < ticketLow && !s.asking
		if ask {
			s.asking = true
		}
		changed := s.changed
		s.mu.Unlock()
		if ask {
			if err := s.send(wire.LaneTickets{Count: ticketBatch}); err != nil {
				s.fail(err)
			}
		}
		if t != nil {
			return t.t, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return wire.LaneTicket{}, context.Cause(ctx)
		}
	}
}

// add keeps a batch of tickets, until a little before the sidecar lets them expire.
func (s *ticketStore) add(m wire.LaneTicketsReply) {
	ttl := time.Duration(m.TTLMillis) * time.Millisecond
	until := time.Now().Add(ttl - ttl/4)
	s.mu.Lock()
	for _, t := range m.Tickets {
		s.held = append(s.held, heldTicket{t: t, until: until})
	}
	s.asking = false
	if len(m.Tickets) == 0 {
		s.dryUntil = time.Now().Add(time.Second)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// fail makes every take fail with err from now on.
func (s *ticketStore) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
}

// newSender returns a function that writes messages on stream one at a time.
func newSender(stream *quic.Stream) func(...wire.Message) error {
	var mu sync.Mutex
	return func(ms ...wire.Message) error {
		mu.Lock()
		defer mu.Unlock()
		return wire.WriteMessages(stream, ms...)
	}
}
