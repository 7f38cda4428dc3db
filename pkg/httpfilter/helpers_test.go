package httpfilter

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstreamServer is an HTTP server standing for the local process or the app. It speaks
// HTTP/1 and h2c and answers every request with its name in X-Upstream.
type upstreamServer struct {
	name  string
	srv   *httptest.Server
	conns atomic.Int32 // connections accepted
}

func startUpstream(t *testing.T, name string) *upstreamServer {
	t.Helper()
	u := &upstreamServer{name: name}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(u.serveHTTP))
	u.srv.Config.Protocols = new(http.Protocols)
	u.srv.Config.Protocols.SetHTTP1(true)
	u.srv.Config.Protocols.SetUnencryptedHTTP2(true)
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstreamServer) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", u.srv.Listener.Addr().String())
}

func (u *upstreamServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Upstream", u.name)
	switch r.URL.Path {
	case "/204":
		w.WriteHeader(http.StatusNoContent)
	case "/hash":
		hashBody(w, r)
	case "/upgrade":
		echoUpgraded(w)
	case "/stream":
		streamLines(w, r)
	default:
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, u.name)
	}
}

// hashBody answers the sha256 of the request body in X-Request-Sha256, and a chunked body
// of ?n= pseudo-random bytes with their sha256 in trailer X-Body-Sha256.
func hashBody(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	if _, err := io.Copy(h, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	w.Header().Set("X-Request-Sha256", hex.EncodeToString(h.Sum(nil)))
	w.Header().Set("Trailer", "X-Body-Sha256")
	h.Reset()
	io.Copy(io.MultiWriter(w, h), io.LimitReader(randomReader(2), n))
	w.Header().Set("X-Body-Sha256", hex.EncodeToString(h.Sum(nil)))
}

// echoUpgraded switches to a raw protocol that echoes every byte until the client's end.
func echoUpgraded(w http.ResponseWriter) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	io.Copy(conn, rw)
}

// streamLines echoes each line of the request body as soon as it arrives, like a
// bidirectional gRPC stream, then ends with trailers.
func streamLines(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "Grpc-Status, X-Upstream-Trailer")
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	lines := bufio.NewScanner(r.Body)
	for lines.Scan() {
		fmt.Fprintf(w, "%s from %s\n", lines.Text(), w.Header().Get("X-Upstream"))
		rc.Flush()
	}
	w.Header().Set("Grpc-Status", "0")
	w.Header().Set("X-Upstream-Trailer", w.Header().Get("X-Upstream"))
}

func randomReader(seed uint64) io.Reader { return rand.NewChaCha8([32]byte{byte(seed)}) }

// proxy serves the connections of a loopback listener with Serve.
type proxy struct {
	addr string
	mu   sync.Mutex
	errs []error // what each Serve returned
}

func startProxy(t *testing.T, f Filter, dialLocal, dialApp dialFunc) *proxy {
	t.Helper()
	return startRoutesProxy(t, []Route{{Filter: f, Dial: dialLocal}}, dialApp)
}

// startRoutesProxy serves ServeRoutes on a loopback listener.
func startRoutesProxy(t *testing.T, routes []Route, dialApp dialFunc) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				err := ServeRoutes(ctx, conn, routes, dialApp)
				p.mu.Lock()
				p.errs = append(p.errs, err)
				p.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
	})
	return p
}

// dial opens a client connection to the proxy.
func (p *proxy) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// setup starts a local and an app upstream and a proxy between them filtering on X-Dev.
func setup(t *testing.T) (local, app *upstreamServer, p *proxy) {
	t.Helper()
	checkLeaks(t)
	local, app = startUpstream(t, "local"), startUpstream(t, "app")
	return local, app, startProxy(t, devFilter(), local.dial, app.dial)
}

func devFilter() Filter {
	name, re, err := ParseHeader("X-Dev: ^alice$")
	if err != nil {
		panic(err)
	}
	return Filter{Header: name, HeaderValue: re}
}

// roundTrip sends req on conn and reads its response, body included.
func roundTrip(t *testing.T, conn net.Conn, br *bufio.Reader, req *http.Request) (*http.Response, string) {
	t.Helper()
	written := make(chan error, 1)
	go func() { written <- req.Write(conn) }()
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	if err := <-written; err != nil {
		t.Fatalf("%s %s: write: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

func newRequest(t *testing.T, method, path, dev string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://pod"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if dev != "" {
		req.Header.Set("X-Dev", dev)
	}
	return req
}

// checkLeaks fails the test if, once its cleanups ran, goroutines of this package or of
// net/http are still running. They may need a moment to notice their connections closed,
// hence the polling.
func checkLeaks(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := leakedGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "checkLeaks") || strings.Contains(g, "testing.(*T).Run") ||
			strings.Contains(g, "testing.(*F).Fuzz") {
			continue
		}
		for line := range strings.SplitSeq(g, "\n") {
			ours := strings.Contains(line, "/sidecar/httpfilter/") && !strings.Contains(line, "_test.go")
			if ours || strings.HasPrefix(line, "net/http.") {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return leaked
}
