package sidecarclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/lane"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	// readyLanes is how many lanes are kept opened and ticketed, so that a new connection
	// does not wait for a port-forward stream or a TLS handshake; openers is how many of
	// them are being opened at once, so that a burst of connections is followed quickly.
	readyLanes = 16
	openers    = 4
	// laneOpenTimeout bounds opening one lane: its connection and handshake.
	laneOpenTimeout = 10 * time.Second
	// inlineOpenTimeout bounds opening a lane for a Dial that found none ready, after which
	// the connection goes on QUIC: the program is waiting.
	inlineOpenTimeout = 3 * time.Second
	// dialAttempts bounds the lanes one Dial tries: a ready lane whose connection broke
	// while it waited fails at once, and the next one is fresh.
	dialAttempts = 3
)

// LaneDialer opens a new connection to the sidecar's port: one more stream of the
// port-forward, or TCP and TLS (transport.LaneClientTLS) to the pod IP. The connection must
// outlive ctx, which bounds the dial only.
type LaneDialer func(ctx context.Context) (net.Conn, error)

// lanes is a session's side of its lanes: the lanes stream, the tickets it brings, the lanes
// kept ready, and the lanes' Set.
type lanes struct {
	connect LaneDialer
	log     *slog.Logger
	set     *lane.Set
	tickets *ticketStore
	ready   chan readyLane
	ctx     context.Context // ends with the session
	cancel  context.CancelFunc
	// recycled keeps the connections of lanes that ended cleanly for the next lanes, when
	// the sidecar takes them back (FeatureLaneReuse); nil when it does not.
	recycled *recycler
	done     chan struct{} // closed when the lanes stream's reader returned
	// failing is when lanes last failed to open (UnixNano), until one opens again; zero
	// while they open.
	failing atomic.Int64

	// The arrivals' lanes start once both the session took a port and ServeIncoming runs.
	incomingMu      sync.Mutex
	wantIncoming    bool
	incomingStarted bool
	incomingCtx     context.Context // ServeIncoming's, for the workers it starts later
	incomingHandle  func(*Incoming)
}

// readyLane is a lane connection opened and named by the sidecar, not carrying anything yet.
type readyLane struct {
	conn net.Conn
	id   uint64
}

// startLanes opens the lanes stream on conn and starts keeping lanes ready; with reuse, the
// connections of lanes that ended cleanly carry new ones.
func startLanes(ctx context.Context, conn *quic.Conn, dial LaneDialer, reuse bool, log *slog.Logger) (*lanes, error) {
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the lanes stream: %w", err)
	}
	if err := wire.WriteMessage(stream, wire.LaneControl{}); err != nil {
		abandon(stream)
		return nil, fmt.Errorf("open the lanes stream: %w", err)
	}
	send := newSender(stream)
	life, cancel := context.WithCancel(context.WithoutCancel(conn.Context()))
	l := &lanes{
		connect: dial,
		log:     log,
		set:     lane.NewSet(send, log),
		tickets: newTicketStore(send),
		ready:   make(chan readyLane, readyLanes),
		ctx:     life,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	if reuse {
		l.recycled = newRecycler(recycledMaxAge, unfreedMaxAge)
	}
	context.AfterFunc(conn.Context(), cancel)
	go l.set.Run(life)
	go l.read(stream)
	for range openers {
		go l.keepReady()
	}
	return l, nil
}

// read takes the sidecar's messages on the lanes stream until it ends.
func (l *lanes) read(stream *quic.Stream) {
	defer close(l.done)
	defer l.cancel()
	r := wire.NewReader(stream)
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			l.tickets.fail(fmt.Errorf("lanes stream: %w", err))
			abandon(stream)
			return
		}
		switch m := msg.(type) {
		case wire.LaneTicketsReply:
			l.tickets.add(m)
		case wire.LaneAcks, wire.LaneEnd:
			if err := l.set.Handle(m); err != nil {
				l.log.Warn("lanes stream", "err", err)
			}
		case wire.LaneFree:
			if l.recycled != nil {
				l.recycled.sidecarFreed(m.Lane)
			}
		default:
			l.log.Warn("lanes stream: unexpected message", "type", msg.Type().String())
		}
	}
}

// close ends every lane and the lanes stream.
func (l *lanes) close() {
	l.cancel()
	l.dropReady()
	l.set.Close()
	if l.recycled != nil {
		l.recycled.close()
	}
}

// dropReady closes the lanes kept ready; keepReady opens new ones.
func (l *lanes) dropReady() {
	for {
		select {
		case r := <-l.ready:
			r.conn.Close()
		default:
			return
		}
	}
}

// keepReady keeps readyLanes lanes opened for the next Dials, until the session ends.
func (l *lanes) keepReady() {
	backoff := 50 * time.Millisecond
	for l.ctx.Err() == nil {
		conn, reply, err := l.open(l.ctx, wire.LaneOutgoing, 0, 0)
		if err != nil {
			if l.ctx.Err() == nil {
				l.openFailed()
				l.log.Debug("lane not opened", "err", err, "retryIn", backoff)
			}
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		l.failing.Store(0)
		select {
		case l.ready <- readyLane{conn: conn, id: reply.Lane}:
			if l.ctx.Err() != nil {
				l.dropReady() // close may have emptied it before this one went in
			}
		case <-l.ctx.Done():
			conn.Close()
		}
	}
}

// failWindow is how long after a lane failed to open a Dial with no lane ready goes on QUIC
// without trying to open one: lanes that fail (the pod IP's TCP port filtered, the
// port-forward re-dialling) must not make every new connection wait for its own failure.
const failWindow = 5 * time.Second

func (l *lanes) openFailed() { l.failing.Store(time.Now().UnixNano()) }

// failingLately tells whether a lane failed to open within failWindow, none having opened
// since.
func (l *lanes) failingLately() bool {
	t := l.failing.Load()
	return t != 0 && time.Since(time.Unix(0, t)) < failWindow
}

// takeReady returns a ready lane, if one is.
func (l *lanes) takeReady() (readyLane, bool) {
	select {
	case r := <-l.ready:
		return r, true
	default:
		return readyLane{}, false
	}
}

// open opens a lane connection with a fresh ticket and says which lane it is: a new one
// (id 0) of kind, or lane id, of which received bytes arrived, re-attached. The messages of
// then follow at once, before the sidecar's answer: a Dial on a new lane costs no round trip
// of its own.
//
// A recycled connection is taken first, if one is free; one that fails (the sidecar stopped
// waiting on it) is no refusal, and the next is tried, then a new connection.
func (l *lanes) open(ctx context.Context, kind wire.LaneKind, id, received uint64, then ...wire.Message) (net.Conn, wire.LaneReply, error) {
	ctx, cancel := context.WithTimeout(ctx, laneOpenTimeout)
	defer cancel()
	for l.recycled != nil {
		conn, ok := l.recycled.take()
		if !ok {
			break
		}
		ticket, err := l.tickets.take(ctx)
		if err != nil {
			conn.Close()
			return nil, wire.LaneReply{}, err
		}
		reply, err := l.name(ctx, conn, nil, wire.LaneOpen{Ticket: ticket, Lane: id, Kind: kind, Received: received}, then)
		if err == nil {
			l.set.Reused()
			return conn, reply, nil
		}
		l.log.Debug("recycled lane connection failed", "err", err)
	}
	ticket, err := l.tickets.take(ctx)
	if err != nil {
		return nil, wire.LaneReply{}, err
	}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, wire.LaneReply{}, err
	}
	reply, err := l.name(ctx, conn, []byte(transport.LaneMagic), wire.LaneOpen{Ticket: ticket, Lane: id, Kind: kind, Received: received}, then)
	if err != nil {
		// Asking about a waiting lane the sidecar did not take is answered so
		// (recoverArrival): that is no refusal.
		if !(kind == wire.LaneIncoming && id != 0 && errors.Is(err, errClosedBySidecar)) {
			l.set.Refused()
		}
		return nil, wire.LaneReply{}, err
	}
	return conn, reply, nil
}

// name sends prefix, open and then on conn and reads the sidecar's LaneReply, within ctx;
// conn is closed on failure.
func (l *lanes) name(ctx context.Context, conn net.Conn, prefix []byte, open wire.LaneOpen, then []wire.Message) (wire.LaneReply, error) {
	msg, err := exchange(ctx, conn, prefix, append([]wire.Message{open}, then...)...)
	if err != nil {
		conn.Close()
		return wire.LaneReply{}, fmt.Errorf("open a lane: %w", err)
	}
	reply, ok := msg.(wire.LaneReply)
	if !ok || (open.Lane != 0 && reply.Lane != open.Lane) || reply.Lane == 0 {
		conn.Close()
		return wire.LaneReply{}, fmt.Errorf("open a lane: unexpected reply %v", msg)
	}
	return reply, nil
}

// errClosedBySidecar is a lane connection the sidecar closed without an answer: a ticket it
// refused, or a lane it does not have.
var errClosedBySidecar = errors.New("the sidecar closed the lane connection")

// exchange writes prefix and reqs on conn and reads one reply, within ctx.
func exchange(ctx context.Context, conn net.Conn, prefix []byte, reqs ...wire.Message) (wire.Message, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	frames, err := prefix, error(nil)
	for _, req := range reqs {
		if frames, err = wire.AppendMessage(frames, req); err != nil {
			break
		}
	}
	if err == nil && len(frames) > 0 {
		_, err = conn.Write(frames)
	}
	var msg wire.Message
	if err == nil {
		msg, err = wire.NewReader(conn).ReadMessage()
	}
	if !stop() {
		return nil, context.Cause(ctx)
	}
	if errors.Is(err, io.EOF) {
		err = errClosedBySidecar
	}
	return msg, err
}

// dial connects to address from the pod on a lane.
func (l *lanes) dial(ctx context.Context, address string, timeout time.Duration) (*Stream, error) {
	req := wire.Dial{Network: "tcp", Address: address, TimeoutMillis: uint32(timeout.Milliseconds())}
	var lastErr error
	for attempt := range dialAttempts {
		r, ok := l.takeReady()
		var msg wire.Message
		var err error
		if ok && attempt == 0 {
			msg, err = exchange(ctx, r.conn, nil, req)
		} else {
			if ok {
				r.conn.Close()
			}
			if l.failingLately() {
				// Lanes have failed to open lately: this connection goes on QUIC at once
				// rather than wait for the next attempt to fail too.
				return nil, &laneUnavailableError{errors.New("lanes failing to open")}
			}
			octx, cancel := context.WithTimeout(ctx, inlineOpenTimeout)
			conn, reply, openErr := l.open(octx, wire.LaneOutgoing, 0, 0, req)
			cancel()
			if openErr != nil {
				l.openFailed()
				return nil, &laneUnavailableError{openErr}
			}
			r = readyLane{conn: conn, id: reply.Lane}
			msg, err = exchange(ctx, conn, nil)
		}
		if err != nil {
			r.conn.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("dial %s from the pod: %w", address, err)
			}
			// The ready lanes likely went down with this one's connection (a port-forward
			// that dropped): the next attempts take fresh ones.
			l.dropReady()
			lastErr = err
			continue
		}
		reply, ok := msg.(wire.DialReply)
		if !ok {
			r.conn.Close()
			return nil, fmt.Errorf("dial %s from the pod: unexpected reply %v", address, msg)
		}
		if err := reply.Err(); err != nil {
			r.conn.Close()
			return nil, fmt.Errorf("dial %s from the pod: %w", address, err)
		}
		ln, err := l.carry(r.id, r.conn)
		if err != nil {
			return nil, err
		}
		return &Stream{c: laneStream{ln}}, nil
	}
	return nil, &laneUnavailableError{lastErr}
}

// carry adds lane id, named by the sidecar, on conn (closed if it cannot), and sees to it that
// conn carries a later lane once this one ends cleanly, where the sidecar takes them back.
func (l *lanes) carry(id uint64, conn net.Conn) (*lane.Lane, error) {
	ln, err := l.set.AddID(id, lane.Options{OnBreak: l.reattach, Recycle: l.recycled != nil})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := ln.Attach(conn, 0); err != nil {
		return nil, err
	}
	if l.recycled != nil {
		go l.recycle(ln)
	}
	return ln, nil
}

// recycle keeps ln's connection for another lane once ln has ended, if it ended cleanly.
func (l *lanes) recycle(ln *lane.Lane) {
	<-ln.Done()
	if conn := ln.Recycled(); conn != nil {
		l.recycled.ended(ln.ID(), conn)
	}
}

// laneUnavailableError says that no lane could carry a dial, which then goes on a QUIC stream.
type laneUnavailableError struct{ err error }

func (e *laneUnavailableError) Error() string { return "no lane: " + e.err.Error() }
func (e *laneUnavailableError) Unwrap() error { return e.err }

// reattach carries a lane whose connection broke on a new one, retrying until the lane or the
// session ends.
func (l *lanes) reattach(ln *lane.Lane) {
	received, err := ln.Suspend()
	if err != nil {
		return
	}
	backoff := 50 * time.Millisecond
	for {
		conn, reply, err := l.open(l.ctx, wire.LaneOutgoing, ln.ID(), received)
		if err == nil {
			if err := ln.Attach(conn, reply.Received); err != nil {
				l.log.Warn("lane not re-attached", "lane", ln.ID(), "err", err)
			}
			return
		}
		l.log.Debug("lane not re-attached yet", "lane", ln.ID(), "err", err, "retryIn", backoff)
		select {
		case <-time.After(backoff):
		case <-ln.Done():
			return
		case <-l.ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// laneStream carries a Stream on a lane.
type laneStream struct{ *lane.Lane }

func (s laneStream) Abandon() { s.Abort() }

// incomingLanes is how many lanes are kept open in the sidecar for the connections that
// arrive at the session's ports: each arrival takes one, and another is opened in its place.
const incomingLanes = 16

// serveIncoming keeps incomingLanes lanes waiting in the sidecar for arrivals, once the session
// has taken a port (subscribed) and ServeIncoming runs (handle), and passes on each arrival,
// until ctx or the session ends.
func (l *lanes) serveIncoming(ctx context.Context, handle func(*Incoming)) {
	l.incomingMu.Lock()
	defer l.incomingMu.Unlock()
	l.incomingCtx, l.incomingHandle = ctx, handle
	l.startIncomingLocked()
}

// subscribed says the session took a port: arrivals may come.
func (l *lanes) subscribed() {
	l.incomingMu.Lock()
	defer l.incomingMu.Unlock()
	l.wantIncoming = true
	l.startIncomingLocked()
}

func (l *lanes) startIncomingLocked() {
	if l.incomingStarted || !l.wantIncoming || l.incomingHandle == nil {
		return
	}
	l.incomingStarted = true
	ctx, handle := l.incomingCtx, l.incomingHandle
	for range incomingLanes {
		go l.waitForArrivals(ctx, handle)
	}
}

// waitForArrivals opens an incoming lane, waits for the sidecar to announce a connection on
// it, passes that on, and opens the next, until ctx or the session ends.
func (l *lanes) waitForArrivals(ctx context.Context, handle func(*Incoming)) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil && l.ctx.Err() == nil {
		conn, reply, err := l.open(ctx, wire.LaneIncoming, 0, 0)
		if err != nil {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			case <-l.ctx.Done():
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if !l.awaitArrival(ctx, conn, reply.Lane, handle) && ctx.Err() == nil && l.ctx.Err() == nil {
			// The connection ended while waiting (a port-forward that dropped): the sidecar
			// may have announced an arrival on it that never came through.
			go l.recoverArrival(ctx, reply.Lane, handle)
		}
	}
}

// awaitArrival reads the Incoming that the sidecar writes on a waiting lane, and passes the
// arrival on to handle; false when conn ended first.
func (l *lanes) awaitArrival(ctx context.Context, conn net.Conn, id uint64, handle func(*Incoming)) bool {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	stopSession := context.AfterFunc(l.ctx, func() { conn.Close() })
	msg, err := wire.NewReader(conn).ReadMessage()
	stop()
	stopSession()
	arrival, ok := msg.(wire.Incoming)
	if err != nil || !ok {
		conn.Close()
		return false
	}
	ln, err := l.carry(id, conn)
	if err != nil {
		return true
	}
	go handle(&Incoming{Stream: &Stream{c: laneStream{ln}}, Port: arrival.Port, Remote: arrival.Remote})
	return true
}

// recoverArrival asks the sidecar about waiting lane id, whose connection ended: if it took the
// lane for an arrival, it says so again on a new connection and the lane goes on there; if
// not, it drops the lane, and the new connection closes.
//
// It asks until the sidecar answers, or for a minute (the lane's resume timeout): right after
// a drop the port-forward may not be back yet, and a lane not asked about would stay among
// those waiting in the sidecar.
func (l *lanes) recoverArrival(ctx context.Context, id uint64, handle func(*Incoming)) {
	deadline := time.Now().Add(lane.DefaultResumeTimeout)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil && l.ctx.Err() == nil && time.Now().Before(deadline) {
		conn, _, err := l.open(ctx, wire.LaneIncoming, id, 0)
		if err == nil {
			l.awaitArrival(ctx, conn, id, handle)
			return
		}
		if errors.Is(err, errClosedBySidecar) {
			return // not taken for an arrival; the sidecar dropped it
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		case <-l.ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
