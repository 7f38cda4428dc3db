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
	disconnected()
	disconnected() // idempotent: a double call must not count another client out
	select {
	case <-idle.Expired():
	case <-time.After(2 * time.Second):
		t.Fatal("no expiry after the last client left")
	}
}
