package httpfilter

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
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
	handOver := takeOverTo(t, &takers, []Route{{Filter: header("^alice$"), Dial: taker.dial}}, app.dial)
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

// takeOverTo is a HandOver that serves what it takes with routes and dialApp, as a sidecar
// receiving the connection over a Unix socket does: with a descriptor of its own, since the
// proxy closes its own once the hand-over returns.
func takeOverTo(t *testing.T, takers *sync.WaitGroup, routes []Route, dialApp dialFunc) func(net.Conn, []byte) bool {
	return func(client net.Conn, buffered []byte) bool {
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
			_ = ServeRoutes(t.Context(), Resume(own.(*net.TCPConn), buffered), routes, dialApp)
		})
		return true
	}
}

// A connection taken over with its request to switch protocols and more of the new protocol's
// bytes than a read buffer holds, all read ahead by the proxy that handed it over: the tunnel
// carries all of them, in order, before those still in the connection.
func TestResumedTunnelKeepsBytesHandedOver(t *testing.T) {
	checkLeaks(t)
	taker, app := startUpstream(t, "taker"), startUpstream(t, "app")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	taken, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	early := strings.Repeat("early bytes of the new protocol ", 1500) // 48 KB
	head := "GET /upgrade HTTP/1.1\r\nHost: pod\r\nX-Dev: alice\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
	dev := Filter{Header: "X-Dev", HeaderValue: regexp.MustCompile("^alice$")}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ServeRoutes(t.Context(), Resume(taken.(*net.TCPConn), []byte(head+early)), []Route{{Filter: dev, Dial: taker.dial}}, app.dial)
	}()
	defer func() { <-served }()
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", resp, err)
	}
	io.WriteString(client, "late")
	client.(*net.TCPConn).CloseWrite()
	echoed, err := io.ReadAll(br)
	if err != nil || string(echoed) != early+"late" {
		t.Errorf("echo of %d bytes, %v; want the %d bytes handed over and %q, in order", len(echoed), err, len(early), "late")
	}
}
