package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/version"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "default", cfg: NewConfig()},
		{name: "short ttl", cfg: Config{TTL: time.Millisecond}},
		{name: "zero ttl", cfg: Config{}, wantErr: "--ttl must be positive, got 0s"},
		{name: "negative ttl", cfg: Config{TTL: -time.Second}, wantErr: "--ttl must be positive, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigAddFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantTTL time.Duration
	}{
		{name: "default", args: nil, wantTTL: DefaultTTL},
		{name: "double dash", args: []string{"--ttl", "30s"}, wantTTL: 30 * time.Second},
		{name: "equals", args: []string{"-ttl=1h"}, wantTTL: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewConfig()
			fs := flag.NewFlagSet("remocal-sidecar", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("Parse(%q) = %v", tt.args, err)
			}
			if cfg.TTL != tt.wantTTL {
				t.Errorf("TTL = %s, want %s", cfg.TTL, tt.wantTTL)
			}
		})
	}
}

// logLines decodes the JSON lines that Run wrote.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestRunExitsAfterTTL(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))

	start := time.Now()
	if err := Run(t.Context(), Config{TTL: 50 * time.Millisecond}, logger); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("Run returned after %s, before the TTL", elapsed)
	}

	lines := logLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), buf.String())
	}
	if lines[0]["msg"] != "sidecar started" || lines[0]["version"] != version.Get().Version {
		t.Errorf("first line = %v, want the start line with version %q", lines[0], version.Get().Version)
	}
	if lines[1]["reason"] != "no client within ttl" {
		t.Errorf("last line = %v, want reason \"no client within ttl\"", lines[1])
	}
}

func TestRunStopsWithContext(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("terminated signal received"))

	if err := Run(ctx, Config{TTL: time.Hour}, logger); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	lines := logLines(t, &buf)
	if got := lines[len(lines)-1]["reason"]; got != "terminated signal received" {
		t.Errorf("stop reason = %v, want the context's cause", got)
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	var buf bytes.Buffer
	err := Run(t.Context(), Config{}, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err == nil {
		t.Fatal("Run() with zero TTL = nil, want an error")
	}
	if buf.Len() != 0 {
		t.Errorf("Run logged %q before rejecting its config", buf.String())
	}
}
