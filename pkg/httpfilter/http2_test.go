package httpfilter

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestHTTP2StreamsRouteSeparately runs gRPC-like bidirectional streams over one h2c client
// connection: one stream with the header goes to local, one without to app, and each
// upstream is reached over a single HTTP/2 connection.
func TestHTTP2StreamsRouteSeparately(t *testing.T) {
	local, app, p := setup(t)
	var dials atomic.Int32
	transport := &http.Transport{
		Protocols: http2Only(),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", p.addr)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)

	for _, tc := range []struct{ dev, want string }{{"alice", "local"}, {"", "app"}, {"alice", "local"}} {
		bodyWriter, body := io.Pipe()
		req := newRequest(t, "POST", "/stream", tc.dev, bodyWriter)
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		resp, err := transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 || resp.Header.Get("X-Upstream") != tc.want {
			t.Fatalf("X-Dev %q: HTTP/%d from %q, want HTTP/2 from %s", tc.dev, resp.ProtoMajor, resp.Header.Get("X-Upstream"), tc.want)
		}
		// Each message is answered before the next is sent: nothing may wait for the end.
		lines := bufio.NewReader(resp.Body)
		for _, msg := range []string{"ping", "pong"} {
			io.WriteString(body, msg+"\n")
			line, err := lines.ReadString('\n')
			if want := msg + " from " + tc.want + "\n"; line != want || err != nil {
				t.Fatalf("got %q, %v; want %q", line, err, want)
			}
		}
		body.Close()
		if rest, err := io.ReadAll(lines); len(rest) != 0 || err != nil {
			t.Fatalf("after the stream: %q, %v", rest, err)
		}
		resp.Body.Close()
		if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("X-Upstream-Trailer") != tc.want {
			t.Errorf("trailers %v", resp.Trailer)
		}
	}
	if dials.Load() != 1 {
		t.Errorf("client dialled the proxy %d times, want 1", dials.Load())
	}
	if local.conns.Load() != 1 || app.conns.Load() != 1 {
		t.Errorf("upstream connections: local %d, app %d; want 1 each", local.conns.Load(), app.conns.Load())
	}
}

func TestHTTP2UnreachableUpstreamAnswers502(t *testing.T) {
	checkLeaks(t)
	app := startUpstream(t, "app")
	refused := func(context.Context) (net.Conn, error) { return nil, io.ErrClosedPipe }
	p := startProxy(t, devFilter(), refused, app.dial)
	transport := &http.Transport{
		Protocols: http2Only(),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", p.addr)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)
	for dev, want := range map[string]int{"alice": http.StatusBadGateway, "": http.StatusOK} {
		resp, err := transport.RoundTrip(newRequest(t, "GET", "/", dev, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("X-Dev %q: status %d, want %d", dev, resp.StatusCode, want)
		}
	}
}
