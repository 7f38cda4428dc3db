package sidecar

import (
	"sync"
	"time"
)

// idleTimer fires once when no client has used the sidecar for ttl: a sidecar nobody uses must
// end, because ephemeral containers cannot be removed from the pod.
type idleTimer struct {
	ttl      time.Duration
	mu       sync.Mutex
	clients  int
	deadline time.Time // when the timer fires once no client is connected
	timer    *time.Timer
	expired  chan struct{}
}

func newIdleTimer(ttl time.Duration) *idleTimer {
	t := &idleTimer{ttl: ttl, deadline: time.Now().Add(ttl), expired: make(chan struct{})}
	t.timer = time.AfterFunc(ttl, t.fire)
	return t
}

// Expired is closed when the TTL passed with no client.
func (t *idleTimer) Expired() <-chan struct{} { return t.expired }

// Connected records a client; the returned func records its leaving, once. used says whether
// the client used the sidecar: the TTL starts again when a used client leaves, while one that
// only looked (kubectl remocal ls) leaves the sidecar the time it had before, so that looking
// every few minutes does not keep an unused sidecar forever.
func (t *idleTimer) Connected() (disconnected func(used bool)) {
	t.mu.Lock()
	t.clients++
	t.timer.Stop()
	t.mu.Unlock()
	var once sync.Once
	return func(used bool) {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.clients--
			now := time.Now()
			if used {
				t.deadline = now.Add(t.ttl)
			}
			if t.clients == 0 {
				t.timer.Reset(max(t.deadline.Sub(now), 0))
			}
		})
	}
}

func (t *idleTimer) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients > 0 {
		return // a client arrived as the timer fired
	}
	select {
	case <-t.expired:
	default:
		close(t.expired)
	}
}
