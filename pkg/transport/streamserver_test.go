package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestStreamServerMalformed sends broken streams to a server that also serves a healthy session:
// each broken stream is closed, nothing panics, and the healthy session never notices.
func TestStreamServerMalformed(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	p := newPeers(t)
	tcp := listenTCP(t)
	srv := newStreamPacketServer(tcp, testLogger(t), serverTiming{headerTimeout: 300 * time.Millisecond, stall: serverStall})
	t.Cleanup(func() { srv.Close() })
	qln, err := Listen(srv, p.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	serveQUIC(t, qln, echo)
	_, healthy, conn := dialStream(ctx, t, p, tcp.Addr().String())
	echoOnce(ctx, t, conn, "before")

	header := appendHeader(nil, sessionToken{0xbd})
	tests := []struct {
		name string
		send []byte
		// closeWrite ends our side after sending, for inputs that are only wrong because they stop.
		closeWrite bool
		// validHeader: the server takes the stream for a session first, and may send to it.
		validHeader bool
	}{
		{name: "http request", send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{name: "bad magic", send: append([]byte("RMCX\x01"), make([]byte, sessionTokenLen)...)},
		{name: "bad magic prefix only", send: []byte("X")},
		{name: "unknown version", send: append([]byte("RMCQ\x02"), make([]byte, sessionTokenLen)...)},
		{name: "empty frame", send: append(bytes.Clone(header), 0, 0), validHeader: true},
		{name: "empty frame after a good one", send: append(appendFrame(bytes.Clone(header), []byte("junk")), 0, 0), validHeader: true},
		{name: "silent", send: nil},
		{name: "truncated header", send: header[:7]},
		{name: "truncated header then EOF", send: header[:7], closeWrite: true},
		{name: "truncated frame then EOF", send: append(bytes.Clone(header), 0, 9, 1, 2), closeWrite: true, validHeader: true},
		{name: "junk datagrams of maximum length then EOF", send: appendFrame(bytes.Clone(header), make([]byte, maxDatagramLen)), closeWrite: true, validHeader: true},
		{name: "the healthy session's token with junk then EOF", send: appendFrame(appendHeader(nil, healthy.token), []byte("junk")), closeWrite: true, validHeader: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tcp.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.closeWrite {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("server kept the stream open")
			}
			if n != 0 && !tt.validHeader {
				t.Errorf("server sent %d bytes on a broken stream", n)
			}
		})
	}

	// The session's token (last case; only its client holds it) replaced the healthy stream; the
	// client must have re-dialed, and its QUIC connection must have survived.
	echoOnce(ctx, t, conn, "after")
	if n := healthy.Redials(); n < 1 {
		t.Errorf("healthy client re-dialed %d times, want at least 1 (after the hijack)", n)
	}
}

// TestStreamServerSessions runs two clients at once on one server: each has its own peer address
// and its own data.
func TestStreamServerSessions(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	p := newPeers(t)
	ln, _ := newStreamServer(t, p, hashSink)
	_, a, connA := dialStream(ctx, t, p, ln.Addr().String())
	_, b, connB := dialStream(ctx, t, p, ln.Addr().String())
	if a.SessionID() == b.SessionID() {
		t.Fatal("two clients share a session id")
	}

	size := transferSize() / 4
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendHashed(ctx, t, connA, size, 1, nil)
	}()
	sendHashed(ctx, t, connB, size+1, 2, nil)
	<-done
}

func TestStreamServerReadDeadline(t *testing.T) {
	srv := NewStreamPacketServer(listenTCP(t), testLogger(t))
	defer srv.Close()
	buf := make([]byte, 10)

	// A deadline set while ReadFrom waits wakes it; quic-go closes its transports this way.
	errc := make(chan error, 1)
	go func() {
		_, _, err := srv.ReadFrom(buf)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	srv.SetReadDeadline(time.Now())
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom after the deadline: %v", err)
	}

	// Cleared, ReadFrom waits again; a future deadline ends the wait then, not before.
	srv.SetReadDeadline(time.Time{})
	srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, _, err := srv.ReadFrom(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrom: %v, want a timeout", err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Errorf("ReadFrom returned after %v, before the deadline", waited)
	}

	srv.SetReadDeadline(time.Time{})
	srv.Close()
	if _, _, err := srv.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
	}
	if _, err := srv.WriteTo([]byte("x"), streamAddr{role: "client"}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
}

func TestStreamServerWriteTo(t *testing.T) {
	srv := NewStreamPacketServer(listenTCP(t), testLogger(t))
	defer srv.Close()
	tests := []struct {
		name string
		b    []byte
		addr net.Addr
		ok   bool
	}{
		{name: "unknown session is dropped", b: []byte("x"), addr: streamAddr{role: "client"}, ok: true},
		{name: "not a session address", b: []byte("x"), addr: &net.UDPAddr{}},
		{name: "server address", b: []byte("x"), addr: streamAddr{role: "server"}},
		{name: "empty", b: nil, addr: streamAddr{role: "client"}},
		{name: "too long", b: make([]byte, maxDatagramLen+1), addr: streamAddr{role: "client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := srv.WriteTo(tt.b, tt.addr)
			if (err == nil) != tt.ok || (tt.ok && n != len(tt.b)) {
				t.Errorf("WriteTo = %d, %v; want ok=%v", n, err, tt.ok)
			}
		})
	}
}
