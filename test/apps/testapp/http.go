package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// shutdownGrace bounds how long in-flight requests may run after SIGTERM;
// it stays well inside the kubelet's default 30s termination grace period.
const shutdownGrace = 10 * time.Second

// echoResponse is what the HTTP mode answers; e2e tests decode it to see
// which pod served a request and what reached it.
type echoResponse struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      url.Values        `json:"query"`
	Headers    http.Header       `json:"headers"`
	Host       string            `json:"host"`
	Hostname   string            `json:"hostname"`
	RemoteAddr string            `json:"remoteAddr"`
	Env        map[string]string `json:"env"`
	Proto      string            `json:"proto"`
}

// newEchoHandler returns the HTTP mode's handler. hostname and environ are
// parameters so tests can tell the values come from the process.
func newEchoHandler(hostname string, environ []string, log *slog.Logger) http.Handler {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		resp := echoResponse{
			Method:     r.Method,
			Path:       r.URL.Path,
			Query:      r.URL.Query(),
			Headers:    r.Header,
			Host:       r.Host,
			Hostname:   hostname,
			RemoteAddr: r.RemoteAddr,
			Env:        env,
			Proto:      r.Proto,
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(resp); err != nil {
			log.Debug("write echo response", "remote", r.RemoteAddr, "err", err)
		}
	})
	return mux
}

// serveHTTP serves the echo handler on ln until ctx is cancelled, then lets
// in-flight requests finish for up to shutdownGrace.
func serveHTTP(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	srv := &http.Server{
		Handler:           newEchoHandler(hostname, os.Environ(), log),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:         new(http.Protocols),
	}
	// HTTP/2 without TLS too (prior knowledge, as gRPC clients speak it), for the tests of
	// HTTP filters on h2c.
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down http server")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down http server: %w", err)
		}
		return nil
	})
	return g.Wait()
}
