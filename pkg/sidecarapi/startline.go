package sidecarapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// startMessage is the msg of the sidecar's start line.
const startMessage = "sidecar started"

// fingerprintPrefix begins every key fingerprint (transport.Identity.Fingerprint).
const fingerprintPrefix = "sha256:"

// ErrNotStartLine is the error of ParseStartLine for a line that is not the start line.
var ErrNotStartLine = errors.New("not the sidecar's start line")

// StartLine is the sidecar's first log line. It must come first and carry the fingerprint of the
// sidecar's key: the plugin reads it through the pod log API, the channel the cluster already
// authenticates, and pins it, so nobody else who can reach the port can pose as this sidecar.
// The rest is for people reading the log.
type StartLine struct {
	Fingerprint string // "sha256:HEX"
	Version     string
	Commit      string
	Port        int
	Direct      bool
	TTL         time.Duration
	MaxLifetime time.Duration
}

// startLineJSON is StartLine as the sidecar's JSON log handler writes it.
type startLineJSON struct {
	Msg         string `json:"msg"`
	Fingerprint string `json:"fingerprint"`
	Version     string `json:"version"`
	Commit      string `json:"commit"`
	Port        int    `json:"port"`
	Direct      bool   `json:"direct"`
	TTL         string `json:"ttl"`
	MaxLifetime string `json:"maxLifetime"`
}

// Log writes l to logger, which must write JSON lines (slog.JSONHandler) for ParseStartLine to
// read it back.
func (l StartLine) Log(ctx context.Context, logger *slog.Logger) {
	logger.LogAttrs(ctx, slog.LevelInfo, startMessage,
		slog.String("fingerprint", l.Fingerprint),
		slog.String("version", l.Version),
		slog.String("commit", l.Commit),
		slog.Int("port", l.Port),
		slog.Bool("direct", l.Direct),
		slog.String("ttl", l.TTL.String()),
		slog.String("maxLifetime", l.MaxLifetime.String()),
	)
}

// ParseStartLine reads a line of the sidecar's log as its start line. A line that is not one,
// or one without a fingerprint, is ErrNotStartLine. The fields a sidecar of another version
// leaves out stay zero.
func ParseStartLine(line []byte) (StartLine, error) {
	var j startLineJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return StartLine{}, fmt.Errorf("%w: %w", ErrNotStartLine, err)
	}
	if j.Msg != startMessage {
		return StartLine{}, fmt.Errorf("%w: its message is %q", ErrNotStartLine, j.Msg)
	}
	if !strings.HasPrefix(j.Fingerprint, fingerprintPrefix) {
		return StartLine{}, fmt.Errorf("%w: no key fingerprint", ErrNotStartLine)
	}
	l := StartLine{Fingerprint: j.Fingerprint, Version: j.Version, Commit: j.Commit, Port: j.Port, Direct: j.Direct}
	var err error
	if l.TTL, err = optionalDuration(j.TTL); err != nil {
		return StartLine{}, fmt.Errorf("start line ttl: %w", err)
	}
	if l.MaxLifetime, err = optionalDuration(j.MaxLifetime); err != nil {
		return StartLine{}, fmt.Errorf("start line maxLifetime: %w", err)
	}
	return l, nil
}

// optionalDuration parses s, which is empty where a sidecar's version has no such field.
func optionalDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
