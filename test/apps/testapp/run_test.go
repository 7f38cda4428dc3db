package main

import (
	"context"
	"errors"
	"flag"
	"testing"
	"time"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"no mode", nil, errUsage},
		{"unknown mode", []string{"ftp"}, errUsage},
		{"unknown flag", []string{"http", "-port", "1"}, errUsage},
		{"flag of another mode", []string{"sleep", "-addr", ":1"}, errUsage},
		{"extra argument", []string{"tcp", "extra"}, errUsage},
		{"help", []string{"udp", "-h"}, flag.ErrHelp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, testLogger(t))
			if !errors.Is(err, tt.want) {
				t.Errorf("run(%q) = %v, want %v", tt.args, err, tt.want)
			}
		})
	}
}

func TestRunSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"sleep"}, testLogger(t)) }()
	select {
	case err := <-done:
		t.Fatalf("sleep returned %v before cancellation", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sleep returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep did not return after cancellation")
	}
}

func TestRunListenError(t *testing.T) {
	for _, mode := range []string{"http", "tcp", "udp"} {
		t.Run(mode, func(t *testing.T) {
			if err := run(t.Context(), []string{mode, "-addr", "256.0.0.1:1"}, testLogger(t)); err == nil {
				t.Error("run with an invalid address succeeded")
			}
		})
	}
}
