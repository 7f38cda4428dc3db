// Package ratelog spaces out a warning that a flood would otherwise repeat for every event (a
// connection refused, a stream turned away), and counts the ones left out.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets one warning through per period. Its zero value lets every warning through;
// it is safe for concurrent use.
type Limiter struct {
	every time.Duration

	mu      sync.Mutex
	last    time.Time
	skipped int
}

// New returns a Limiter that lets one warning through per every.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow tells whether a warning may be logged now and, if so, how many were left out since
// the last one that was.
func (l *Limiter) Allow() (skipped int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.skipped++
		return 0, false
	}
	skipped, l.skipped, l.last = l.skipped, 0, now
	return skipped, true
}
