package httpfilter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestKeepAliveAlternatesUpstreams(t *testing.T) {
	local, app, p := setup(t)
	conn, br := p.dial(t)
	for i, dev := range []string{"alice", "", "alice", "bob", "", "alice"} {
		_, body := roundTrip(t, conn, br, newRequest(t, "GET", "/", dev, nil))
		want := "app"
		if dev == "alice" {
			want = "local"
		}
		if body != want {
			t.Errorf("request %d with X-Dev %q went to %s, want %s", i, dev, body, want)
		}
	}
	if local.conns.Load() != 1 || app.conns.Load() != 1 {
		t.Errorf("upstream connections: local %d, app %d; want 1 each (keep-alive)", local.conns.Load(), app.conns.Load())
	}
}

// Several routes share a connection: each request goes to the first route that matches.
func TestRoutesShareAConnection(t *testing.T) {
	checkLeaks(t)
	alice, bob, app := startUpstream(t, "alice"), startUpstream(t, "bob"), startUpstream(t, "app")
	header := func(re string) Filter { return Filter{Header: "X-Dev", HeaderValue: regexp.MustCompile(re)} }
	p := startRoutesProxy(t, []Route{
		{Filter: header("^alice$"), Dial: alice.dial},
		{Filter: header("^bob$"), Dial: bob.dial},
		{Filter: header("^(alice|bob|carol)$"), Dial: app.dial}, // after the first two: carol only
	}, app.dial)
	conn, br := p.dial(t)
	for i, dev := range []string{"alice", "bob", "", "carol", "bob", "alice"} {
		_, body := roundTrip(t, conn, br, newRequest(t, "GET", "/", dev, nil))
		want := map[string]string{"alice": "alice", "bob": "bob"}[dev]
		if want == "" {
			want = "app"
		}
		if body != want {
			t.Errorf("request %d with X-Dev %q went to %s, want %s", i, dev, body, want)
		}
	}
	if alice.conns.Load() != 1 || bob.conns.Load() != 1 {
		t.Errorf("upstream connections: alice %d, bob %d; want 1 each (keep-alive)", alice.conns.Load(), bob.conns.Load())
	}
}

func TestPathFilter(t *testing.T) {
	checkLeaks(t)
	local, app := startUpstream(t, "local"), startUpstream(t, "app")
	p := startProxy(t, Filter{Path: regexp.MustCompile(`^/api/`)}, local.dial, app.dial)
	conn, br := p.dial(t)
	for path, want := range map[string]string{"/api/x?q=1": "local", "/web/api/": "app", "/api": "app"} {
		if _, body := roundTrip(t, conn, br, newRequest(t, "GET", path, "", nil)); body != want {
			t.Errorf("%s went to %s, want %s", path, body, want)
		}
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	_, _, p := setup(t)
	conn, br := p.dial(t)
	var reqs bytes.Buffer
	devs := []string{"alice", "", "alice"}
	for _, dev := range devs {
		newRequest(t, "GET", "/", dev, nil).Write(&reqs)
	}
	if _, err := conn.Write(reqs.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"local", "app", "local"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want {
			t.Errorf("response %d from %s, want %s", i, body, want)
		}
	}
}

func TestChunkedBodiesStreamUnchanged(t *testing.T) {
	_, _, p := setup(t)
	conn, br := p.dial(t)
	const size = 3 << 20
	for _, dev := range []string{"alice", ""} {
		want := sha256.New()
		// A reader of unknown length makes the client send chunks.
		body := io.TeeReader(io.LimitReader(randomReader(1), size), want)
		req := newRequest(t, "POST", "/hash?n=4000000", dev, struct{ io.Reader }{body})
		resp, got := roundTrip(t, conn, br, req)
		if resp.Header.Get("X-Request-Sha256") != hex.EncodeToString(want.Sum(nil)) {
			t.Errorf("X-Dev %q: upstream received a different request body", dev)
		}
		sum := sha256.Sum256([]byte(got))
		if len(got) != 4000000 || resp.Trailer.Get("X-Body-Sha256") != hex.EncodeToString(sum[:]) {
			t.Errorf("X-Dev %q: response body of %d bytes does not match its trailer %q", dev, len(got), resp.Trailer.Get("X-Body-Sha256"))
		}
		if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("response transfer encoding %q, want chunked", resp.TransferEncoding)
		}
	}
}

func TestResponsesWithoutBody(t *testing.T) {
	_, _, p := setup(t)
	conn, br := p.dial(t)
	// Each is followed by a request on the same connection: a proxy waiting for a body that
	// never comes would hang or answer it with the wrong bytes.
	for _, req := range []*http.Request{
		newRequest(t, "HEAD", "/", "alice", nil),
		newRequest(t, "GET", "/", "", nil),
		newRequest(t, "GET", "/204", "alice", nil),
		newRequest(t, "GET", "/", "alice", nil),
	} {
		resp, body := roundTrip(t, conn, br, req)
		want := map[string]string{"/": resp.Header.Get("X-Upstream"), "/204": ""}[req.URL.Path]
		if req.Method == "HEAD" {
			want = ""
		}
		if body != want {
			t.Errorf("%s %s: body %q, want %q", req.Method, req.URL.Path, body, want)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	_, _, p := setup(t)
	conn, br := p.dial(t)
	io.WriteString(conn, "POST /hash HTTP/1.1\r\nHost: pod\r\nX-Dev: alice\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	// The client sends the body only after the 100 Continue came through.
	interim, err := http.ReadResponse(br, nil)
	if err != nil || interim.StatusCode != http.StatusContinue {
		t.Fatalf("interim response %v, %v; want 100 Continue", interim, err)
	}
	io.WriteString(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	sum := sha256.Sum256([]byte("hello"))
	if resp.Header.Get("X-Upstream") != "local" || resp.Header.Get("X-Request-Sha256") != hex.EncodeToString(sum[:]) {
		t.Errorf("final response %v", resp.Header)
	}
}

func TestUnreachableUpstreamAnswers502(t *testing.T) {
	checkLeaks(t)
	app := startUpstream(t, "app")
	refused := func(context.Context) (net.Conn, error) { return nil, errors.New("no local process") }
	p := startProxy(t, devFilter(), refused, app.dial)
	conn, br := p.dial(t)
	resp, body := roundTrip(t, conn, br, newRequest(t, "GET", "/", "alice", nil))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "no local process") {
		t.Errorf("got %d %q, want 502 naming the dial error", resp.StatusCode, body)
	}
	// Without a body to skip, the connection goes on.
	if _, body := roundTrip(t, conn, br, newRequest(t, "GET", "/", "", nil)); body != "app" {
		t.Errorf("next request answered %q, want app", body)
	}
	// With one, it ends after the 502.
	resp, _ = roundTrip(t, conn, br, newRequest(t, "POST", "/", "alice", strings.NewReader("x")))
	if resp.StatusCode != http.StatusBadGateway || !resp.Close {
		t.Errorf("got %d close=%v, want 502 and close", resp.StatusCode, resp.Close)
	}
	expectClosed(t, br)
}

func TestRefusedRequests(t *testing.T) {
	_, _, p := setup(t)
	for name, tc := range map[string]struct {
		request string
		status  int
	}{
		"oversized head":     {"GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n", 431},
		"many header lines":  {"GET / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", maxHeadBytes/8) + "\r\n", 431},
		"garbage":            {"HELLO\r\n\r\n", 400},
		"HTTP/3":             {"GET / HTTP/3.0\r\n\r\n", 400},
		"both framings":      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		"gzip only":          {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		"bad length":         {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
		"conflicting length": {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		"line folding":       {"GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", 400},
		"space in name":      {"GET / HTTP/1.1\r\nX-A : b\r\n\r\n", 400},
	} {
		t.Run(name, func(t *testing.T) {
			conn, br := p.dial(t)
			go io.WriteString(conn, tc.request) // may fail once the proxy closed
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("got %d close=%v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
			expectClosed(t, br)
		})
	}
}

func TestUpgradeTunnelsRawBytes(t *testing.T) {
	_, _, p := setup(t)
	conn, br := p.dial(t)
	// Bytes of the new protocol may follow the request before the 101: they must not be lost.
	io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: pod\r\nX-Dev: alice\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly ")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Upstream") != "" {
		t.Fatalf("got %v, %v; want 101", resp, err)
	}
	io.WriteString(conn, "late")
	conn.(*net.TCPConn).CloseWrite()
	echoed, err := io.ReadAll(br)
	if err != nil || string(echoed) != "early late" {
		t.Errorf("echo %q, %v; want %q", echoed, err, "early late")
	}
}

func TestConnectionCloseEndsConnection(t *testing.T) {
	_, _, p := setup(t)
	conn, br := p.dial(t)
	req := newRequest(t, "GET", "/", "alice", nil)
	req.Close = true
	if _, body := roundTrip(t, conn, br, req); body != "local" {
		t.Errorf("answered by %q", body)
	}
	expectClosed(t, br)
}

func TestCancelClosesPromptly(t *testing.T) {
	checkLeaks(t)
	app := startUpstream(t, "app")
	client, server := net.Pipe()
	defer client.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, server, devFilter(), app.dial, app.dial) }()
	// Half a request: Serve is blocked reading the rest.
	go io.WriteString(client, "GET / HTTP/1.1\r\n")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancellation")
	}
}

func TestEmptyFilterRefused(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	if err := Serve(t.Context(), server, Filter{}, nil, nil); err == nil {
		t.Error("Serve accepted an empty filter")
	}
}

// expectClosed fails unless the proxy closed the connection with nothing more to read.
func expectClosed(t *testing.T, br interface{ Read([]byte) (int, error) }) {
	t.Helper()
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("connection not closed: read %d bytes, %v", n, err)
	}
}
