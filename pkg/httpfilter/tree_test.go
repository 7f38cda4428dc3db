package httpfilter

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A tree of method, query, header and path filters routes the same requests over HTTP/1.1 and
// h2c: what the client sees of it is the same whichever protocol carries it.
func TestFilterTreeOverBothProtocols(t *testing.T) {
	checkLeaks(t)
	local, app := startUpstream(t, "local"), startUpstream(t, "app")
	leaf := func(op wire.FilterOp, arg string) wire.HTTPFilter { return wire.HTTPFilter{Op: op, Arg: arg} }
	// GET or HEAD on /api/, for alice by header or by query; or any DELETE.
	f, err := Compile(wire.HTTPFilter{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{
		{Op: wire.FilterAllOf, Sub: []wire.HTTPFilter{
			leaf(wire.FilterMethod, "GET,HEAD"),
			leaf(wire.FilterPath, "^/api/"),
			{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{leaf(wire.FilterHeader, "X-Dev: ^alice$"), leaf(wire.FilterQuery, "dev=^alice$")}},
		}},
		leaf(wire.FilterMethod, "delete"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, f, local.dial, app.dial)
	requests := []struct {
		method, path, dev, want string
	}{
		{"GET", "/api/x", "alice", "local"},
		{"HEAD", "/api/x", "alice", "local"},
		{"POST", "/api/x", "alice", "app"},
		{"GET", "/web", "alice", "app"},
		{"GET", "/api/x", "bob", "app"},
		{"GET", "/api/x?dev=alice", "", "local"},
		{"GET", "/api/x?dev=al%69ce&x=1", "", "local"},
		{"GET", "/api/x?dev=bob", "", "app"},
		{"DELETE", "/anything", "", "local"},
	}
	h1 := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", p.addr)
	}}
	h2 := h1.Clone()
	h2.Protocols = http2Only()
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2.CloseIdleConnections)
	for _, tr := range []struct {
		name      string
		transport *http.Transport
		proto     int
	}{{"HTTP/1.1", h1, 1}, {"h2c", h2, 2}} {
		t.Run(tr.name, func(t *testing.T) {
			for _, r := range requests {
				resp, err := tr.transport.RoundTrip(newRequest(t, r.method, r.path, r.dev, nil))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if got := resp.Header.Get("X-Upstream"); resp.ProtoMajor != tr.proto || got != r.want {
					t.Errorf("%s %s X-Dev %q: HTTP/%d from %q, want HTTP/%d from %s", r.method, r.path, r.dev, resp.ProtoMajor, got, tr.proto, r.want)
				}
			}
		})
	}
}
