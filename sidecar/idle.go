package sidecar

import (
	"sync"
	"time"
)

// idleTimer fires once when no client has been connected for ttl: a sidecar nobody uses must end,
// because ephemeral containers cannot be removed from the pod.
type idleTimer struct {
	ttl     time.Duration
	mu      sync.Mutex
	clients int
	timer   *time.Timer
	expired chan struct{}
}

func newIdleTimer(ttl time.Duration) *idleTimer {
	t := &idleTimer{ttl: ttl, expired: make(chan struct{})}
	t.timer = time.AfterFunc(ttl, t.fire)
	return t
}

// Expired is closed when the TTL passed with no client.
func (t *idleTimer) Expired() <-chan struct{} { return t.expired }

// Connected records a client; the returned func records its leaving.
func (t *idleTimer) Connected() (disconnected func()) {
	t.mu.Lock()
	t.clients++
	t.timer.Stop()
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.clients--
			if t.clients == 0 {
				t.timer.Reset(t.ttl)
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
