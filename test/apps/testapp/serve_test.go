package main

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// testLogger logs through t so server messages appear with the failing test.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer runs serve in a goroutine and returns a function that cancels
// it and checks that it stops in time without error, as on SIGTERM.
func startServer(t *testing.T, serve func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server returned %v after cancellation, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server did not stop within 5s of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}
