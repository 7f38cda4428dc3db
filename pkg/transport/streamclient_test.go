package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer accepts the client's streams on loopback TCP and hands them to the test undecoded.
func rawServer(t *testing.T) (net.Listener, <-chan net.Conn) {
	t.Helper()
	ln := listenTCP(t)
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			conns <- c
		}
	}()
	return ln, conns
}

func nextConn(t *testing.T, conns <-chan net.Conn) (net.Conn, *bufio.Reader, sessionToken) {
	t.Helper()
	select {
	case c := <-conns:
		r := bufio.NewReader(c)
		b := make([]byte, headerLen)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("read header: %v", err)
		}
		tok, _, err := parseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		return c, r, tok
	case <-time.After(5 * time.Second):
		t.Fatal("client dialed no stream")
		return nil, nil, sessionToken{}
	}
}

func testTiming() clientTiming {
	return clientTiming{dialTimeout: time.Second, stall: clientStall, minBackoff: minBackoff, maxBackoff: maxBackoff}
}

func TestStreamClientPackets(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	ln, conns := rawServer(t)
	d := &tcpDialer{addr: ln.Addr().String()}
	c, err := NewStreamPacketClient(ctx, d.dial, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, r, tok := nextConn(t, conns)
	if tok != c.token || tok.id() != c.SessionID() {
		t.Fatalf("header presents a token of session %v, want the client's token, of %v", tok.id(), c.SessionID())
	}

	// Server to client: each frame is one ReadFrom, from the server's address.
	sc.Write(appendFrame(appendFrame(nil, []byte("one")), []byte("two")))
	buf := make([]byte, 100)
	for _, want := range []string{"one", "two"} {
		n, from, err := c.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want || from != c.Addr() {
			t.Fatalf("ReadFrom = %q from %v, %v; want %q from %v", buf[:n], from, err, want, c.Addr())
		}
	}
	// A datagram longer than the buffer is truncated, as UDP does.
	sc.Write(appendFrame(nil, []byte("truncated")))
	if n, _, err := c.ReadFrom(buf[:5]); err != nil || string(buf[:n]) != "trunc" {
		t.Fatalf("ReadFrom into 5 bytes = %q, %v", buf[:n], err)
	}

	// Client to server.
	for _, p := range []string{"three", "four"} {
		if n, err := c.WriteTo([]byte(p), c.Addr()); err != nil || n != len(p) {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
	}
	for _, want := range []string{"three", "four"} {
		b := make([]byte, frameHeaderLen)
		io.ReadFull(r, b)
		n, _ := frameLen(b)
		b = make([]byte, n-frameHeaderLen)
		io.ReadFull(r, b)
		if string(b) != want {
			t.Fatalf("server read %q, want %q", b, want)
		}
	}
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{}); err == nil {
		t.Error("WriteTo another address succeeded")
	}
}

func TestStreamClientFirstDialFails(t *testing.T) {
	refused := errors.New("port-forward refused")
	_, err := NewStreamPacketClient(testContext(t, time.Second), func(context.Context) (net.Conn, error) {
		return nil, refused
	}, testLogger(t))
	if !errors.Is(err, refused) {
		t.Fatalf("got %v, want the dial error", err)
	}
}

// TestStreamClientRedial breaks the stream, fails the next dials, and checks that the client
// re-dials at once, then backs off, keeps its session, and drops writes in the gap without blocking.
func TestStreamClientRedial(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	ln, conns := rawServer(t)
	d := &tcpDialer{addr: ln.Addr().String()}
	var failures atomic.Int32
	var mu sync.Mutex
	var attempts []time.Time
	dial := func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		attempts = append(attempts, time.Now())
		mu.Unlock()
		if failures.Add(-1) >= 0 {
			return nil, errors.New("apiserver restarting")
		}
		return d.dial(ctx)
	}
	c, err := newStreamPacketClient(ctx, dial, testLogger(t), testTiming())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, _, id := nextConn(t, conns)
	// Traffic makes the stream count as working, so the first re-dial after it comes at once.
	first.Write(appendFrame(nil, []byte("hello")))
	c.ReadFrom(make([]byte, 10))

	failures.Store(3)
	lost := time.Now()
	first.Close()
	if !waitFor(5*time.Second, func() bool { return failures.Load() < 0 }) {
		t.Fatal("client did not retry")
	}
	for range 100 {
		start := time.Now()
		if n, err := c.WriteTo([]byte("gap"), c.Addr()); err != nil || n != 3 {
			t.Fatalf("WriteTo in the gap = %d, %v", n, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("WriteTo in the gap blocked for %v", d)
		}
	}
	_, _, id2 := nextConn(t, conns)
	if id2 != id {
		t.Errorf("re-dialed stream continues session %v, want %v", id2.id(), id.id())
	}
	if !waitFor(time.Second, func() bool { return c.Redials() == 1 }) {
		t.Errorf("Redials() = %d, want 1", c.Redials())
	}
	// Attempts: the first dial, then at once, 50ms, 100ms, 200ms after the loss.
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 5 {
		t.Fatalf("%d dial attempts, want 5", len(attempts))
	}
	if d := attempts[1].Sub(lost); d > 40*time.Millisecond {
		t.Errorf("first re-dial %v after the loss, want at once", d)
	}
	for i, want := range []time.Duration{50, 100, 200} {
		if got := attempts[i+2].Sub(attempts[i+1]); got < want*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, want at least %vms", i+3, got, want)
		}
	}
}

// TestStreamClientStall: a stream that stays open but delivers nothing is given up and re-dialed.
func TestStreamClientStall(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	ln, conns := rawServer(t)
	d := &tcpDialer{addr: ln.Addr().String()}
	timing := testTiming()
	timing.stall = 100 * time.Millisecond
	c, err := newStreamPacketClient(ctx, d.dial, testLogger(t), timing)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nextConn(t, conns)
	nextConn(t, conns)
	if !waitFor(time.Second, func() bool { return c.Redials() >= 1 }) {
		t.Errorf("Redials() = %d, want at least 1", c.Redials())
	}
}

func TestStreamClientContextEnds(t *testing.T) {
	ln, _ := rawServer(t)
	d := &tcpDialer{addr: ln.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := NewStreamPacketClient(ctx, d.dial, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after ctx ended: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom still blocked after ctx ended")
	}
	if _, err := c.WriteTo([]byte("x"), c.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after ctx ended: %v, want net.ErrClosed", err)
	}
	c.Close()
	if _, err := d.last().Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("stream still open after the client closed: %v", err)
	}
}

// TestStreamClientCloseWhileDialing: Close does not wait for a dial that hangs.
func TestStreamClientCloseWhileDialing(t *testing.T) {
	ln, conns := rawServer(t)
	d := &tcpDialer{addr: ln.Addr().String()}
	var hang atomic.Bool
	dial := func(ctx context.Context) (net.Conn, error) {
		if hang.Load() {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return d.dial(ctx)
	}
	c, err := newStreamPacketClient(testContext(t, 10*time.Second), dial, testLogger(t), clientTiming{
		dialTimeout: time.Minute, stall: clientStall, minBackoff: minBackoff, maxBackoff: maxBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := nextConn(t, conns)
	hang.Store(true)
	first.Close()
	time.Sleep(50 * time.Millisecond)
	closeWithin(t, c, 5*time.Second, "Close waited for a hung dial")
}

// closeWithin closes c and fails the test with complaint if that takes longer than d.
func closeWithin(t *testing.T, c *StreamPacketClient, d time.Duration, complaint string) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(d):
		t.Fatal(complaint)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 50 * time.Millisecond, max: 300 * time.Millisecond}
	var got []time.Duration
	for range 6 {
		got = append(got, b.wait())
	}
	want := []time.Duration{0, 50, 100, 200, 300, 300}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	b.reset()
	if d := b.wait(); d != 0 {
		t.Errorf("after reset: %v, want 0", d)
	}
}

// slowWrites delays each write to its stream after the first (the header), as a congested
// port-forward does; Close ends the wait, as closing a real stream ends a write stuck on it.
type slowWrites struct {
	net.Conn
	delay     time.Duration
	writes    atomic.Int64
	closed    chan struct{}
	closeOnce sync.Once
}

func newSlowWrites(c net.Conn, delay time.Duration) *slowWrites {
	return &slowWrites{Conn: c, delay: delay, closed: make(chan struct{})}
}

func (c *slowWrites) Write(b []byte) (int, error) {
	if c.writes.Add(1) == 1 {
		return c.Conn.Write(b)
	}
	select {
	case <-time.After(c.delay):
		return c.Conn.Write(b)
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *slowWrites) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// slowWritesDialer dials addr over TCP, each stream's writes delayed by delay.
func slowWritesDialer(addr string, delay time.Duration) func(context.Context) (net.Conn, error) {
	d := &tcpDialer{addr: addr}
	return func(ctx context.Context) (net.Conn, error) {
		c, err := d.dial(ctx)
		if err != nil {
			return nil, err
		}
		return newSlowWrites(c, delay), nil
	}
}

// The last packets written before Close reach the stream: they are a QUIC connection's closing
// frame, which the sidecar would otherwise wait out to its idle timeout.
func TestStreamClientCloseSendsWhatWasWritten(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	ln, conns := rawServer(t)
	c, err := NewStreamPacketClient(ctx, slowWritesDialer(ln.Addr().String(), 50*time.Millisecond), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, r, _ := nextConn(t, conns)
	for _, p := range []string{"first", "last"} {
		if _, err := c.WriteTo([]byte(p), c.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	for _, want := range []string{"first", "last"} {
		b := make([]byte, frameHeaderLen)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("read the frame of %q: %v", want, err)
		}
		n, _ := frameLen(b)
		b = make([]byte, n-frameHeaderLen)
		if _, err := io.ReadFull(r, b); err != nil || string(b) != want {
			t.Fatalf("server read %q, %v; want %q", b, err, want)
		}
	}
}

// A stream that takes nothing does not hold Close past closeFlush.
func TestStreamClientCloseOnAStuckStream(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	ln, conns := rawServer(t)
	c, err := NewStreamPacketClient(ctx, slowWritesDialer(ln.Addr().String(), time.Hour), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	nextConn(t, conns)
	c.WriteTo([]byte("stuck"), c.Addr())
	closeWithin(t, c, closeFlush+5*time.Second, "Close hangs on a stream that takes nothing")
}
