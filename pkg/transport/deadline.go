package transport

import (
	"sync"
	"time"
)

// deadline is a read deadline for a connection without a socket of its own. quic-go depends on it:
// closing a quic.Transport sets the read deadline to now to wake its reader, then clears it, and
// expects a later read to block again.
//
// done is closed while the deadline has passed and replaced by an open channel when the deadline
// moves into the future, so a reader selects on done() alongside its data.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	done  chan struct{}
}

func newDeadline() *deadline {
	return &deadline{done: make(chan struct{})}
}

// set moves the deadline; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The timer fired or is firing; wait until it has closed done, so that the state below is
		// settled before it is changed.
		<-d.done
	}
	d.timer = nil

	passed := isClosed(d.done)
	if t.IsZero() {
		if passed {
			d.done = make(chan struct{})
		}
		return
	}
	if wait := time.Until(t); wait > 0 {
		if passed {
			d.done = make(chan struct{})
		}
		done := d.done
		d.timer = time.AfterFunc(wait, func() { close(done) })
		return
	}
	if !passed {
		close(d.done)
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
