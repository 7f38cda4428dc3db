package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
)

func TestServeHTTP(t *testing.T) {
	t.Setenv("TESTAPP_MARKER", "from-env")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	stop := startServer(t, func(ctx context.Context) error { return serveHTTP(ctx, ln, log) })
	base := "http://" + ln.Addr().String()

	t.Run("echo", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/some/path?a=1&a=2&b=x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Remocal-Test", "hello")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d", resp.StatusCode)
		}
		var got echoResponse
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		hostname, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			field, got, want string
		}{
			{"method", got.Method, "GET"},
			{"path", got.Path, "/some/path"},
			{"query a", got.Query.Get("a"), "1"},
			{"query b", got.Query.Get("b"), "x"},
			{"header", got.Headers.Get("X-Remocal-Test"), "hello"},
			{"host", got.Host, ln.Addr().String()},
			{"hostname", got.Hostname, hostname},
			{"env", got.Env["TESTAPP_MARKER"], "from-env"},
			{"proto", got.Proto, "HTTP/1.1"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
			}
		}
		if len(got.Query["a"]) != 2 {
			t.Errorf("query a = %q, want both values", got.Query["a"])
		}
		if host, _, err := net.SplitHostPort(got.RemoteAddr); err != nil || host != "127.0.0.1" {
			t.Errorf("remoteAddr = %q, want 127.0.0.1:port", got.RemoteAddr)
		}
	})

	t.Run("healthz", func(t *testing.T) {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", resp.StatusCode, body)
		}
	})

	stop()
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}
