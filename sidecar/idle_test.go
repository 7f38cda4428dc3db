package sidecar

import (
	"testing"
	"time"
)

func TestIdleTimerExpiresWithoutClients(t *testing.T) {
	idle := newIdleTimer(30 * time.Millisecond)
	select {
	case <-idle.Expired():
	case <-time.After(2 * time.Second):
		t.Fatal("no expiry without any client")
	}
}

func TestIdleTimerWaitsWhileAClientIsConnected(t *testing.T) {
	idle := newIdleTimer(30 * time.Millisecond)
	disconnected := idle.Connected()
	select {
	case <-idle.Expired():
		t.Fatal("expired while a client was connected")
	case <-time.After(150 * time.Millisecond):
	}
	disconnected(true)
	disconnected(true) // idempotent: a double call must not count another client out
	select {
	case <-idle.Expired():
	case <-time.After(2 * time.Second):
		t.Fatal("no expiry after the last client left")
	}
}

// A client that only looked (kubectl remocal ls) leaves the sidecar the time it had; one that
// used it gives it the whole TTL again.
func TestIdleTimerLookingDoesNotRestartTheTTL(t *testing.T) {
	const ttl = time.Second
	for _, used := range []bool{false, true} {
		begin := time.Now()
		idle := newIdleTimer(ttl)
		time.Sleep(ttl * 6 / 10)
		idle.Connected()(used)
		select {
		case <-idle.Expired():
		case <-time.After(5 * ttl):
			t.Fatalf("used=%v: no expiry", used)
		}
		took := time.Since(begin)
		// Timers never fire early, and 0.45 s of lateness would be a very busy machine.
		if !used && took >= ttl*145/100 {
			t.Errorf("a client that only looked restarted the TTL: expired after %s", took)
		}
		if used && took < ttl*16/10 {
			t.Errorf("a client that used the sidecar did not restart the TTL: expired after %s", took)
		}
	}
}
