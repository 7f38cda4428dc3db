package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/version"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "valid", cfg: validConfig(0)},
		{name: "short ttl", cfg: Config{Flags: sidecarapi.Flags{TTL: time.Millisecond, MaxLifetime: time.Hour, ClientPin: testPin, Port: 1}}},
		{name: "zero ttl", cfg: Config{Flags: sidecarapi.Flags{MaxLifetime: time.Hour, ClientPin: testPin, Port: 1}}, wantErr: "--ttl must be positive, got 0s"},
		{name: "negative ttl", cfg: Config{Flags: sidecarapi.Flags{TTL: -time.Second, MaxLifetime: time.Hour, ClientPin: testPin, Port: 1}}, wantErr: "--ttl must be positive, got -1s"},
		{name: "zero max lifetime", cfg: Config{Flags: sidecarapi.Flags{TTL: time.Second, ClientPin: testPin, Port: 1}}, wantErr: "--max-lifetime must be positive, got 0s"},
		{name: "no pin", cfg: Config{Flags: sidecarapi.Flags{TTL: time.Second, MaxLifetime: time.Hour, Port: 1}}, wantErr: `--client-pin must be sha256:HEX, got ""`},
		{name: "bad port", cfg: Config{Flags: sidecarapi.Flags{TTL: time.Second, MaxLifetime: time.Hour, ClientPin: testPin, Port: 70000}}, wantErr: "--port must be 1-65535, got 70000"},
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
	cfg := validConfig(testnet.FreePort(t))
	cfg.TTL = 50 * time.Millisecond
	if err := Run(t.Context(), cfg, logger); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("Run returned after %s, before the TTL", elapsed)
	}

	lines := logLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), buf.String())
	}
	if lines[0]["msg"] != "sidecar started" || lines[0]["version"] != version.Get().Version || !strings.HasPrefix(lines[0]["fingerprint"].(string), "sha256:") {
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

	if err := Run(ctx, validConfig(testnet.FreePort(t)), logger); err != nil {
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

const testPin = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

func validConfig(port int) Config {
	cfg := NewConfig()
	cfg.ClientPin = testPin
	cfg.Port = port
	if port == 0 {
		cfg.Port = 1
	}
	return cfg
}
