package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// firstDatagram is a packet connection that keeps the first datagram written to it and
// delivers nothing: a quic-go client dialling over it sends its Initial and hears no answer.
type firstDatagram struct {
	got       chan []byte
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *firstDatagram) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case c.got <- append([]byte(nil), b...):
	default:
	}
	return len(b), nil
}

func (c *firstDatagram) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *firstDatagram) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *firstDatagram) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *firstDatagram) SetDeadline(d time.Time) error {
	return c.SetReadDeadline(d)
}
func (c *firstDatagram) SetWriteDeadline(time.Time) error { return nil }

// SetReadDeadline in the past is how quic-go's transport stops reading: it ends ReadFrom.
func (c *firstDatagram) SetReadDeadline(d time.Time) error {
	if !d.IsZero() && !d.After(time.Now()) {
		c.Close()
	}
	return nil
}

// initials returns the Initial packets of n clients, each with connection IDs of its own, as a
// flood sends them: the first datagram of a quic-go client.
func initials(t *testing.T, n int, to net.Addr, conf *tls.Config) [][]byte {
	t.Helper()
	var packets [][]byte
	for range n {
		pc := &firstDatagram{got: make(chan []byte, 1), closed: make(chan struct{})}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = quic.Dial(ctx, pc, to, conf, &quic.Config{})
		}()
		packets = append(packets, <-pc.got)
		cancel()
		<-done
		pc.Close()
	}
	return packets
}

// sendFrom sends each packet to to from a socket of its own, on the loopback addresses
// 127.0.0.first and after, each many times (ports of one address count as one source). The
// sockets stay open until the test ends and read nothing: no Retry is ever answered.
func sendFrom(t *testing.T, packets [][]byte, to net.Addr, first, addresses int) {
	t.Helper()
	for i, p := range packets {
		ip := net.IPv4(127, 0, 0, byte(first+i%addresses))
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.WriteTo(p, to); err != nil {
			t.Fatal(err)
		}
	}
}

// dialFrom dials ln's address from the loopback address ip, and closes the connection.
func dialFrom(t *testing.T, ip net.IP, to net.Addr, p peers) error {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, c, to, p.clientTLS())
	if err != nil {
		return err
	}
	return conn.CloseWithError(0, "")
}

// A flood of Initials from addresses that never answer (spoofed, or silent) holds no more than
// a few handshakes: past retryAbove, a new client gets a stateless Retry. A real client still
// gets in, after one more round trip.
func TestHandshakeFloodIsBounded(t *testing.T) {
	const flood = 300
	p := newPeers(t)
	pc := listenUDP(t)
	ln, err := Listen(pc, p.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serveQUIC(t, ln, func(s *quic.Stream) { s.Close() })
	packets := initials(t, flood, pc.LocalAddr(), p.clientTLS())

	before := runtime.NumGoroutine()
	sendFrom(t, packets, pc.LocalAddr(), 2, 100)
	time.Sleep(500 * time.Millisecond)
	added := runtime.NumGoroutine() - before
	t.Logf("%d Initials: %d handshakes in progress, %d goroutines more", flood, ln.guard.inProgress(), added)
	// Bounds of a tenth of the flood, so that the test says "bounded", not which bound.
	if n := ln.guard.inProgress(); n > flood/10 {
		t.Errorf("%d handshakes in progress, want at most %d", n, flood/10)
	}
	if added > flood/3 {
		t.Errorf("%d Initials started %d goroutines, want at most %d", flood, added, flood/3)
	}
	if err := dialFrom(t, net.IPv4(127, 0, 0, 1), pc.LocalAddr(), p); err != nil {
		t.Fatalf("a real client during the flood: %v", err)
	}
}

// One source address has at most perSource handshakes in progress, whatever its ports; the
// others are refused, while other sources are served.
func TestHandshakesPerSource(t *testing.T) {
	limits := handshakeLimits{retryAbove: 1000, total: 64, perSource: 4}
	p := newPeers(t)
	pc := listenUDP(t)
	ln, err := listen(pc, p.serverTLS(), limits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serveQUIC(t, ln, func(s *quic.Stream) { s.Close() })

	sendFrom(t, initials(t, 10, pc.LocalAddr(), p.clientTLS()), pc.LocalAddr(), 2, 1)
	if !waitFor(5*time.Second, func() bool { return ln.guard.inProgress() == limits.perSource }) {
		t.Fatalf("%d handshakes in progress from one address, want %d", ln.guard.inProgress(), limits.perSource)
	}
	err = dialFrom(t, net.IPv4(127, 0, 0, 2), pc.LocalAddr(), p)
	var transportErr *quic.TransportError
	if !errors.As(err, &transportErr) || transportErr.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("a fifth handshake from one address: %v, want CONNECTION_REFUSED", err)
	}
	if err := dialFrom(t, net.IPv4(127, 0, 0, 3), pc.LocalAddr(), p); err != nil {
		t.Fatalf("a client from another address: %v", err)
	}
	// An authenticated client's handshake no longer counts (the server authenticates the
	// client's last flight a moment after the client is done).
	if !waitFor(5*time.Second, func() bool { return ln.guard.inProgress() == limits.perSource }) {
		n := ln.guard.inProgress()
		t.Fatalf("%d handshakes in progress once the other client was in, want %d", n, limits.perSource)
	}
}
