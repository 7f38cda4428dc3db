package httpfilter

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

// A route's HandOver takes the connection at the request boundary where the route's first
// request starts, with every byte read and not relayed; the taker serves the rest.
func TestHandOverAtARequestBoundary(t *testing.T) {
	checkLeaks(t)
	taker, app := startUpstream(t, "taker"), startUpstream(t, "app")
	header := func(re string) Filter { return Filter{Header: "X-Dev", HeaderValue: regexp.MustCompile(re)} }
	var takers sync.WaitGroup
	t.Cleanup(takers.Wait)
	handOver := func(client net.Conn, buffered []byte) bool {
		// The proxy closes its descriptor once this returns: the taker keeps one of its own,
		// as a sidecar receiving the connection over a Unix socket does.
		f, err := client.(*net.TCPConn).File()
		if err != nil {
			t.Error(err)
			return false
		}
		defer f.Close()
		own, err := net.FileConn(f)
		if err != nil {
			t.Error(err)
			return false
		}
		takers.Go(func() {
			_ = ServeRoutes(t.Context(), Resume(own.(*net.TCPConn), buffered), []Route{{Filter: header("^alice$"), Dial: taker.dial}}, app.dial)
		})
		return true
	}
	p := startRoutesProxy(t, []Route{
		{Filter: header("^bob$"), Dial: app.dial, HandOver: func(net.Conn, []byte) bool { return false }},
		{Filter: header("^alice$"), Dial: app.dial, HandOver: handOver},
	}, app.dial)
	conn, br := p.dial(t)
	for _, dev := range []string{"", "bob"} {
		if _, body := roundTrip(t, conn, br, newRequest(t, "GET", "/", dev, nil)); body != "app" {
			t.Fatalf("X-Dev %q before the hand-over went to %s, want app", dev, body)
		}
	}
	// Three requests at once: the hand-over carries the two read ahead with the first.
	var reqs bytes.Buffer
	for _, dev := range []string{"alice", "", "alice"} {
		newRequest(t, "GET", "/", dev, nil).Write(&reqs)
	}
	if _, err := conn.Write(reqs.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"taker", "app", "taker"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		if body.String() != want {
			t.Errorf("response %d after the hand-over from %s, want %s", i, body.String(), want)
		}
	}
	if _, body := roundTrip(t, conn, br, newRequest(t, "GET", "/", "bob", nil)); body != "app" {
		t.Errorf("a later request went to %s, want app", body)
	}
	conn.Close()
	takers.Wait()
	// The proxy's ServeRoutes returned when the hand-over did; its result is recorded after.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		errs := slices.Clone(p.errs)
		p.mu.Unlock()
		if len(errs) == 1 && errors.Is(errs[0], ErrHandedOver) {
			return
		}
		if len(errs) > 1 || time.Now().After(deadline) {
			t.Fatalf("ServeRoutes returned %v, want ErrHandedOver", errs)
		}
	}
}
