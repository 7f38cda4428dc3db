package transport

import "time"

// backoff spaces out re-dials: the first comes at once, since a stream that worked until now most
// likely dropped for a passing reason; later ones double from min up to max, so a sidecar that is
// gone or an apiserver that is down is not hammered.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

// wait returns how long to wait before the next attempt.
func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(max(2*b.next, b.min), b.max)
	return d
}

// reset makes the next attempt immediate again.
func (b *backoff) reset() { b.next = 0 }
