package sidecarapi

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestStartLineRoundTrip(t *testing.T) {
	want := StartLine{Fingerprint: "sha256:0123abcd", Version: "v0.3.0", Commit: "abc1234", Port: 45000, Direct: true, TTL: 10 * time.Minute, MaxLifetime: 12 * time.Hour}
	var buf bytes.Buffer
	want.Log(t.Context(), slog.New(slog.NewJSONHandler(&buf, nil)))
	line, err := buf.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseStartLine(line)
	if err != nil {
		t.Fatalf("ParseStartLine(%s) = %v", line, err)
	}
	if got != want {
		t.Errorf("ParseStartLine(%s) = %+v, want %+v", line, got, want)
	}
}

func TestParseStartLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       StartLine
		notStart   bool
	}{
		{name: "a sidecar of the first version",
			line: `{"time":"2025-01-01T00:00:00Z","level":"INFO","msg":"sidecar started","fingerprint":"sha256:ab","version":"v0.1.0","commit":"","port":45000,"direct":true,"ttl":"10m0s"}`,
			want: StartLine{Fingerprint: "sha256:ab", Version: "v0.1.0", Port: 45000, Direct: true, TTL: 10 * time.Minute}},
		{name: "a failure instead", line: `{"time":"2025-01-01T00:00:00Z","level":"ERROR","msg":"sidecar failed","err":"--port must be 1-65535, got 0"}`, notStart: true},
		{name: "no fingerprint", line: `{"msg":"sidecar started","fingerprint":"","version":"v0.1.0"}`, notStart: true},
		{name: "not JSON", line: "exec /remocal-sidecar: exec format error\n", notStart: true},
		{name: "empty", line: "", notStart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStartLine([]byte(tt.line))
			if tt.notStart {
				if !errors.Is(err, ErrNotStartLine) {
					t.Errorf("ParseStartLine = %+v, %v; want ErrNotStartLine", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseStartLine = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseStartLineBadDuration(t *testing.T) {
	_, err := ParseStartLine([]byte(`{"msg":"sidecar started","fingerprint":"sha256:ab","ttl":"ten minutes"}`))
	if err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Errorf("ParseStartLine with a bad ttl = %v, want an error naming it", err)
	}
}
