package sidecarclient

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar"
)

// loopbackLanes opens plain lanes to the sidecar's port on loopback, as the kubelet's
// port-forward does in the pod, and keeps them so that a test can cut them.
type loopbackLanes struct {
	port  int
	mu    sync.Mutex
	conns []net.Conn
}

func (l *loopbackLanes) dial(ctx context.Context) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port)))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

// opened counts the lane connections opened so far.
func (l *loopbackLanes) opened() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// cut closes every lane connection opened so far, as a dropped port-forward does.
func (l *loopbackLanes) cut() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (r *realSidecar) laneSession(t testing.TB) (*Session, *loopbackLanes) {
	t.Helper()
	lanes := &loopbackLanes{port: r.port}
	s := r.session(t, Options{Lanes: lanes.dial})
	if s.lanes == nil {
		t.Fatal("the session has no lanes with a sidecar that offers them")
	}
	// Until a lane is ready, connections go on QUIC streams.
	for deadline := time.Now().Add(5 * time.Second); len(s.lanes.ready) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no lane ready 5 s after the session started")
		}
	}
	return s, lanes
}

func TestLanesAgainstTheSidecar(t *testing.T) {
	s, lanes := startSidecar(t, fakeProc(t, t.TempDir(), "")).laneSession(t)
	ctx := t.Context()

	tcp, err := s.Dial(ctx, "tcp", testnet.TCPEcho(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tcp.c.(laneStream); !ok {
		t.Fatalf("a TCP connection rides %T, want a lane", tcp.c)
	}
	// 8 MiB through the echo while every lane connection is cut four times.
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	sent := make(chan error, 1)
	go func() {
		for p := data; len(p) > 0; {
			k := min(len(p), 100_000)
			if _, err := tcp.Write(p[:k]); err != nil {
				sent <- err
				return
			}
			p = p[k:]
		}
		sent <- tcp.CloseWrite()
	}()
	// The cuts come as the echo's bytes arrive, at a fifth, two fifths, ... of them.
	h := sha256.New()
	var n int64
	buf := make([]byte, 64<<10)
	for cut := int64(len(data)) / 5; ; {
		k, err := tcp.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if n >= cut && cut < int64(len(data)) {
			lanes.cut()
			cut += int64(len(data)) / 5
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", n, err)
		}
	}
	if n != int64(len(data)) || [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatalf("echoed %d bytes (want %d), the same bytes: %v", n, len(data), [32]byte(h.Sum(nil)) == sha256.Sum256(data))
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	tcp.Close()
	if st := s.lanes.set.Stats(); st.Resumed < 4 {
		t.Errorf("lanes cut 4 times resumed %d times: %+v", st.Resumed, st)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := s.Dial(ctx, "tcp", closed.Addr().String(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial of a closed port on a lane: %v, want ECONNREFUSED", err)
	}
}

// TestLaneConnectionsCarryTheNextLanes: once a connection's lane has ended cleanly on both
// sides, the connection carries a later one, rather than a new port-forward stream or TLS
// handshake being paid for each program connection.
func TestLaneConnectionsCarryTheNextLanes(t *testing.T) {
	s, lanes := startSidecar(t, fakeProc(t, t.TempDir(), "")).laneSession(t)
	if s.lanes.recycled == nil {
		t.Fatal("no recycling of lane connections with a sidecar that offers it")
	}
	ctx := t.Context()
	echo := testnet.TCPEcho(t)
	roundTrip := func(i int) {
		t.Helper()
		tcp, err := s.Dial(ctx, "tcp", echo, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer tcp.Close()
		if _, ok := tcp.c.(laneStream); !ok {
			t.Fatalf("connection %d rides %T, want a lane", i, tcp.c)
		}
		msg := "connection " + strconv.Itoa(i)
		if _, err := tcp.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = tcp.CloseWrite()
		if got, err := io.ReadAll(tcp); err != nil || string(got) != msg {
			t.Fatalf("connection %d echoed %q, %v", i, got, err)
		}
	}
	// Let the first lanes kept ready be opened, then count the connections that follow.
	time.Sleep(200 * time.Millisecond)
	before := lanes.opened()
	const conns = 40
	for i := range conns {
		roundTrip(i)
		// The lane ends on both sides within the acknowledgements' delay, and is free after
		// the sidecar's word.
		time.Sleep(100 * time.Millisecond)
	}
	if opened := lanes.opened() - before; opened > 4 {
		t.Errorf("%d program connections opened %d lane connections, want them carried by recycled ones", conns, opened)
	}
	if st := s.lanes.set.Stats(); st.Refused != 0 || st.Resumed != 0 {
		t.Errorf("lane statistics %+v, want none refused or resumed", st)
	}
}

// TestReattachedLaneLeavesItsNewConnection: a lane re-attached on a new connection (its first
// one cut, as a dropped port-forward does) and then ended cleanly leaves that new connection to
// a later lane.
func TestReattachedLaneLeavesItsNewConnection(t *testing.T) {
	s, lanes := startSidecar(t, fakeProc(t, t.TempDir(), "")).laneSession(t)
	ctx := t.Context()
	echo := testnet.TCPEcho(t)
	tcp, err := s.Dial(ctx, "tcp", echo, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	const first, second = "before the cut, ", "after it"
	if _, err := tcp.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tcp, make([]byte, len(first))); err != nil {
		t.Fatal(err)
	}
	lanes.cut() // every lane connection so far: the ready ones and this lane's
	// Only a lane that ended cleanly frees its connection, and none has yet.
	reused := s.lanes.set.Stats().Reused
	if _, err := tcp.Write([]byte(second)); err != nil {
		t.Fatal(err)
	}
	_ = tcp.CloseWrite()
	if got, err := io.ReadAll(tcp); err != nil || string(got) != second {
		t.Fatalf("after the cut the lane echoed %q, %v", got, err)
	}
	tcp.Close()
	if st := s.lanes.set.Stats(); st.Resumed == 0 {
		t.Fatalf("lane statistics %+v: the lane was not re-attached", st)
	}
	// Its connection is free once both ends are done with the lane. The next lane opened
	// takes it: the replacement of a cut ready lane, if one is still due, else the
	// replacement of the ready lane a new dial takes (again if that came too late, the
	// connection's 1 s up, and another lane's connection is free by then).
	for deadline := time.Now().Add(5 * time.Second); s.lanes.set.Stats().Reused == reused; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the re-attached lane's connection carried no later lane")
		}
		if freeConnections(s.lanes.recycled) > 0 {
			next, err := s.Dial(ctx, "tcp", echo, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			next.Close()
			time.Sleep(100 * time.Millisecond) // the replacement's turn
		}
	}
}

// freeConnections is how many lane connections r holds free for the next lanes.
func freeConnections(r *recycler) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.free)
}

// rawLane opens a lane connection with ticket and returns the sidecar's answer: a LaneReply,
// or the error of a connection closed without one.
func rawLane(t *testing.T, port int, ticket wire.LaneTicket) (wire.Message, error) {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return exchange(ctx, c, []byte(transport.LaneMagic), wire.LaneOpen{Ticket: ticket})
}

func TestLaneTicketsAreSingleUseAndShortLived(t *testing.T) {
	const ttl = 300 * time.Millisecond
	r := startSidecar(t, fakeProc(t, t.TempDir(), ""), func(c *sidecar.Config) { c.LaneTicketTTL = ttl })
	s, _ := r.laneSession(t)
	ctx := t.Context()

	if _, err := rawLane(t, r.port, wire.LaneTicket{}); err == nil {
		t.Error("a lane with no ticket was answered")
	}
	ticket, err := s.lanes.tickets.take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reply, err := rawLane(t, r.port, ticket); err != nil {
		t.Fatalf("a lane with a fresh ticket: %v", err)
	} else if _, ok := reply.(wire.LaneReply); !ok {
		t.Fatalf("a lane with a fresh ticket answered %v", reply)
	}
	if _, err := rawLane(t, r.port, ticket); err == nil {
		t.Error("a lane with a used ticket was answered")
	}
	old, err := s.lanes.tickets.take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if _, err := rawLane(t, r.port, old); err == nil {
		t.Error("a lane with an expired ticket was answered")
	}

	// The session goes on.
	tcp, err := s.Dial(ctx, "tcp", testnet.TCPEcho(t), time.Second)
	if err != nil {
		t.Fatalf("Dial after refused lanes: %v", err)
	}
	defer tcp.Close()
	if _, err := tcp.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = tcp.CloseWrite()
	if data, err := io.ReadAll(tcp); err != nil || string(data) != "ping" {
		t.Errorf("TCP after refused lanes: %q, %v", data, err)
	}
}

// TestLanesThatCannotOpenFallBackToQUIC: when lane connections hang (a filtered port), a
// Dial waits a bounded time for one, and the next ones do not wait at all: QUIC carries them.
func TestLanesThatCannotOpenFallBackToQUIC(t *testing.T) {
	r := startSidecar(t, fakeProc(t, t.TempDir(), ""))
	hang := func(ctx context.Context) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s := r.session(t, Options{Lanes: hang})
	if s.lanes == nil {
		t.Fatal("the session has no lanes")
	}
	echo := testnet.TCPEcho(t)
	for i, bound := range []time.Duration{inlineOpenTimeout + 2*time.Second, time.Second} {
		start := time.Now()
		tcp, err := s.Dial(t.Context(), "tcp", echo, time.Second)
		if err != nil {
			t.Fatalf("Dial %d with lanes that never open: %v", i, err)
		}
		if took := time.Since(start); took > bound {
			t.Errorf("Dial %d took %s, want at most %s", i, took, bound)
		}
		if _, ok := tcp.c.(quicStream); !ok {
			t.Errorf("Dial %d rides %T, want a QUIC stream", i, tcp.c)
		}
		tcp.Abandon()
	}
}
