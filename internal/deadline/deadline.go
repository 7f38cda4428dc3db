// Package deadline gives read deadlines to connections that have no socket of their own: a
// channel that is closed while the deadline has passed, for a reader to select on beside its
// data.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a point in time a reader gives up at. Setting it to now wakes a waiting reader;
// clearing it afterwards lets a later read block again (quic-go relies on both when it closes
// a transport, and a lane that hands its connection on does the same).
//
// Its channel is closed while the deadline has passed, and replaced by an open one when the
// deadline moves into the future or is cleared.
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	done  chan struct{}
}

// New returns a deadline that is not set.
func New() *Deadline {
	return &Deadline{done: make(chan struct{})}
}

// Set moves the deadline; the zero time means none.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The timer fired or is firing; wait until it has closed done, so that the state below is
		// settled before it is changed.
		<-d.done
	}
	d.timer = nil

	passed := IsClosed(d.done)
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

// Wait returns a channel that is closed when the deadline passes.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// IsClosed tells whether c, a deadline's channel or any other closed as a signal, is closed,
// without waiting.
func IsClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
