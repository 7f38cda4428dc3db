package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/internal/ratelog"
	"github.com/remocal/kubectl-remocal/pkg/lane"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	// defaultTicketTTL is how long a lane ticket may wait to be used: a plugin uses its
	// tickets within a round trip or two of getting them, or asks for new ones.
	defaultTicketTTL = 10 * time.Second
	// maxSessionTickets bounds the tickets a session holds unused.
	maxSessionTickets = 1024
	// laneHeaderTimeout bounds how long a lane connection may take to say which lane it is:
	// the plugin sends it with the connection's first bytes.
	laneHeaderTimeout = 5 * time.Second
	// freedWait bounds how long a recycled lane connection waits for the client's next lane
	// on it (wire.LaneFree): the client keeps one only while it may soon need it.
	freedWait = 30 * time.Second
	// maxUnchecked bounds the lane connections whose ticket is not yet read and checked.
	maxUnchecked = 256
	// resendBudget bounds what all lanes keep for resending to their clients: the sidecar's
	// memory is the app pod's. It is two lanes' worth at full speed (lane.DefaultMaxUnacked);
	// past it, lanes wait for their clients' acknowledgements.
	resendBudget = 64 << 20
	// refusalLogEvery spaces the warnings about refused lane connections, which a flood would
	// otherwise repeat for each one.
	refusalLogEvery = 10 * time.Second
)

// lanes serves the sessions' lane connections: it issues their tickets on each session's
// lanes stream, and takes the connections the port's mux sorts out as lanes.
type lanes struct {
	srv    *server
	log    *slog.Logger
	budget *lane.Budget
	// unchecked holds a token per lane connection whose ticket is being checked.
	unchecked chan struct{}

	mu       sync.Mutex
	tickets  map[wire.LaneTicket]issuedTicket
	sessions map[*quic.Conn]*laneSession
	// refusals spaces the warnings about refused lane connections.
	refusals *ratelog.Limiter
}

type issuedTicket struct {
	// sess is nil once the session ended. The ticket is kept until it expires, so that the
	// lanes the client was opening as it left are told from strangers' and closed without a
	// warning; what the session held is not kept with it.
	sess    *laneSession
	expires time.Time
}

func newLanes(srv *server, log *slog.Logger) *lanes {
	return &lanes{srv: srv, log: log, refusals: ratelog.New(refusalLogEvery), budget: lane.NewBudget(resendBudget), unchecked: make(chan struct{}, maxUnchecked), tickets: map[wire.LaneTicket]issuedTicket{}, sessions: map[*quic.Conn]*laneSession{}}
}

// laneSession is one client's lanes: its lane.Set, and its lane connections not yet carrying
// a connection (the pool the client keeps ready).
type laneSession struct {
	set *lane.Set
	// recycle: the client takes lane connections back for new lanes (FeatureLaneReuse).
	recycle bool
	done    <-chan struct{} // closed when the client's connection ends
	log     *slog.Logger
	mu      sync.Mutex
	idle    map[net.Conn]struct{}
	// incoming holds the lanes the client opened for the connections that arrive at its
	// ports, oldest first.
	incoming []*idleIncoming
	// arrivals holds what each lane taken for an arrival announced, while it lasts, to be
	// announced again to a client that lost the announcement (reattach).
	arrivals map[uint64]wire.Incoming
	// tickets counts the session's unused tickets.
	tickets int
}

// idleIncoming is a lane connection waiting for a connection to arrive. Its watcher reads it
// meanwhile, to learn when the client's end is gone (nothing else comes before Incoming).
type idleIncoming struct {
	conn    net.Conn
	id      uint64
	taken   bool          // sess.mu
	watched chan struct{} // closed when the watcher's read returned
	ended   error         // why the watcher's read returned, once watched is closed
	// carried gets the lane once an arrival took it, or nil once it ended otherwise.
	carried chan *lane.Lane
}

// settle says what became of the waiting lane: l carries an arrival, or (nil) it is gone.
func (in *idleIncoming) settle(l *lane.Lane) { in.carried <- l }

// recycled waits for the waiting lane to carry an arrival and end, and returns its
// connection if the lane left it free for the next (lane.Options.Recycle); else nil.
func (in *idleIncoming) recycled() net.Conn {
	l := <-in.carried
	if l == nil {
		return nil
	}
	<-l.Done()
	return l.Recycled()
}

// serveStream serves a session's lanes stream (its first message, LaneControl, read) until
// the stream or the connection ends; its lanes end with it.
func (ls *lanes) serveStream(ctx context.Context, log *slog.Logger, conn *quic.Conn, stream *quic.Stream, r *wire.Reader) {
	defer stream.Close()
	var sendMu sync.Mutex
	send := func(ms ...wire.Message) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return wire.WriteMessages(stream, ms...)
	}
	sess := &laneSession{done: ctx.Done(), log: log, idle: map[net.Conn]struct{}{}, recycle: ls.srv.sessions.has(conn, wire.FeatureLaneReuse)}
	sess.set = lane.NewSet(send, log)
	ls.mu.Lock()
	if _, ok := ls.sessions[conn]; ok {
		ls.mu.Unlock()
		rejectStream(stream, errors.New("a second lanes stream"))
		return
	}
	ls.sessions[conn] = sess
	ls.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); sess.set.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
		ls.forget(conn, sess)
		st := sess.set.Stats()
		log.InfoContext(ctx, "lanes", "opened", st.Opened, "onReusedConnections", st.Reused, "resumed", st.Resumed, "broken", st.Broken,
			"bytesIn", st.BytesIn, "bytesOut", st.BytesOut)
	}()
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.DebugContext(ctx, "lanes stream ended", "err", err)
			}
			return
		}
		switch m := msg.(type) {
		case wire.LaneTickets:
			if err := send(ls.issue(sess, int(m.Count))); err != nil {
				return
			}
		case wire.LaneAcks, wire.LaneEnd:
			if err := sess.set.Handle(m); err != nil {
				rejectStream(stream, err)
				return
			}
		default:
			rejectStream(stream, fmt.Errorf("unexpected message %T on the lanes stream", msg))
			return
		}
	}
}

// issue makes up to n tickets for sess, as many as its bound on unused ones leaves.
func (ls *lanes) issue(sess *laneSession, n int) wire.LaneTicketsReply {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now := time.Now()
	ttl := ls.srv.cfg.LaneTicketTTL
	if ttl <= 0 {
		ttl = defaultTicketTTL
	}
	ls.sweepLocked(now)
	n = min(n, wire.MaxLaneTickets, maxSessionTickets-sess.tickets)
	reply := wire.LaneTicketsReply{TTLMillis: uint32(ttl.Milliseconds())}
	for range n {
		t, err := wire.NewLaneTicket()
		if err != nil {
			break
		}
		ls.tickets[t] = issuedTicket{sess: sess, expires: now.Add(ttl)}
		sess.tickets++
		reply.Tickets = append(reply.Tickets, t)
	}
	return reply
}

// sweepLocked drops the tickets expired at now.
func (ls *lanes) sweepLocked(now time.Time) {
	for t, it := range ls.tickets {
		if now.After(it.expires) {
			delete(ls.tickets, t)
			if it.sess != nil {
				it.sess.tickets--
			}
		}
	}
}

// redeem takes a ticket: the session it is good for, once, before it expires; nil otherwise,
// with ended set for an unexpired ticket of a session that ended.
func (ls *lanes) redeem(t wire.LaneTicket) (sess *laneSession, ended bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	it, ok := ls.tickets[t]
	if !ok {
		return nil, false
	}
	delete(ls.tickets, t)
	if it.sess == nil {
		return nil, !time.Now().After(it.expires)
	}
	it.sess.tickets--
	if time.Now().After(it.expires) {
		return nil, false
	}
	return it.sess, false
}

// forget drops what a session that ended left: its idle lane connections, and the right of its
// tickets to open lanes.
func (ls *lanes) forget(conn *quic.Conn, sess *laneSession) {
	ls.mu.Lock()
	delete(ls.sessions, conn)
	ls.sweepLocked(time.Now())
	for t, it := range ls.tickets {
		if it.sess == sess {
			it.sess = nil
			ls.tickets[t] = it
		}
	}
	ls.mu.Unlock()
	sess.mu.Lock()
	for c := range sess.idle {
		c.Close()
	}
	for _, in := range sess.incoming {
		in.conn.Close()
	}
	sess.idle, sess.incoming = nil, nil
	sess.mu.Unlock()
}

// refuse closes a lane connection that has no right to be one, and logs it (at most every
// refusalLogEvery, with the count of those not logged).
func (ls *lanes) refuse(conn net.Conn, reason string) {
	conn.Close()
	if skipped, ok := ls.refusals.Allow(); ok {
		ls.log.Warn("lane connection refused", "remote", conn.RemoteAddr().String(), "reason", reason, "alsoRefusedSinceLastWarning", skipped)
	}
}

// serve takes the lane connections the mux sorts out until ctx ends.
func (ls *lanes) serve(ctx context.Context, accept func(context.Context) (net.Conn, error)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		// Until its ticket is checked, a connection holds only a place among those saying
		// who they are: any process in the pod can make them, and they must not take the
		// streams the sessions' connections need.
		select {
		case ls.unchecked <- struct{}{}:
		default:
			ls.refuse(conn, "too many lane connections not yet showing a ticket")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls.serveConn(ctx, conn)
		}()
	}
}

// serveConn reads which lane conn is and serves it: a new lane, or one re-attached; then,
// for as long as its lanes end cleanly and the client takes it back, the lanes that follow.
func (ls *lanes) serveConn(ctx context.Context, conn net.Conn) {
	r, open, sess := ls.checkTicket(conn, laneHeaderTimeout)
	<-ls.unchecked
	for sess != nil {
		id, freed, waiting := ls.serveLane(ctx, sess, conn, r, open)
		if waiting != nil {
			// Outside serveLane: a lane waiting for an arrival takes no stream.
			id, freed = waiting.id, waiting.recycled()
		}
		if freed == nil {
			return
		}
		// freed is the lane's last connection: another than conn if the lane was re-attached.
		conn = freed
		r, open = ls.awaitNextLane(sess, conn, id)
		if r == nil {
			return
		}
	}
}

// serveLane serves one lane on conn, as open says, and returns the connection once the lane
// ended cleanly and left it free (lane.Options.Recycle), with the lane's ID; else nil. A lane
// that waits for an arrival is returned as it waits, where the client recycles lanes.
func (ls *lanes) serveLane(ctx context.Context, sess *laneSession, conn net.Conn, r *wire.Reader, open wire.LaneOpen) (uint64, net.Conn, *idleIncoming) {
	if !ls.srv.streams.TryAcquire(1) {
		ls.refuse(conn, "too many streams")
		return 0, nil, nil
	}
	defer ls.srv.streams.Release(1)
	select {
	case <-sess.done:
		conn.Close()
		return 0, nil, nil
	default:
	}
	if open.Lane != 0 {
		ls.reattach(sess, conn, open)
		return 0, nil, nil
	}
	if open.Kind == wire.LaneIncoming && !sess.roomToWait() {
		// Refused before it is named, so that the client backs off rather than wait on a
		// lane about to close.
		ls.refuse(conn, "too many lanes waiting for arrivals")
		return 0, nil, nil
	}
	id := sess.set.Reserve()
	if err := wire.WriteMessage(conn, wire.LaneReply{Lane: id}); err != nil {
		conn.Close()
		return 0, nil, nil
	}
	_ = conn.SetDeadline(time.Time{})
	if !sess.hold(conn) {
		conn.Close()
		return 0, nil, nil
	}
	switch open.Kind {
	case wire.LaneOutgoing:
		// Pooled until the client writes its Dial, which may be long after.
		msg, err := r.ReadMessage()
		if !sess.release(conn) || err != nil {
			conn.Close()
			return 0, nil, nil
		}
		dial, ok := msg.(wire.Dial)
		if !ok || dial.Network != "tcp" {
			_ = wire.WriteMessage(conn, wire.Error{Code: wire.ErrCodeProtocol, Reason: fmt.Sprintf("a lane carries a TCP dial, not %T", msg)})
			conn.Close()
			return 0, nil, nil
		}
		return id, ls.srv.dialLane(ctx, sess, id, conn, dial), nil
	case wire.LaneIncoming:
		if sess.release(conn) {
			if in := sess.addIncoming(conn, id); in != nil && sess.recycle {
				return 0, nil, in
			}
		}
	default:
		sess.release(conn)
		conn.Close()
	}
	return 0, nil, nil
}

// awaitNextLane tells the client that conn, lane id's connection, is free (wire.LaneFree),
// and reads the LaneOpen of the next lane the client puts on it, within freedWait. It returns
// a nil reader, conn closed, when none comes, or one whose ticket is not the session's.
func (ls *lanes) awaitNextLane(sess *laneSession, conn net.Conn, id uint64) (*wire.Reader, wire.LaneOpen) {
	if !sess.hold(conn) { // closed if the session ends meanwhile
		conn.Close()
		return nil, wire.LaneOpen{}
	}
	sess.set.SendFree(id)
	r, open, err := readLaneOpen(conn, freedWait)
	if !sess.release(conn) {
		return nil, wire.LaneOpen{}
	}
	if err != nil {
		// The client closed it, or kept it unused: no refusal.
		sess.log.Debug("recycled lane connection not taken", "lane", id, "err", err)
		conn.Close()
		return nil, wire.LaneOpen{}
	}
	switch s, ended := ls.redeem(open.Ticket); {
	case ended:
		// The session ended as its client sent this: no stranger's.
		sess.log.Debug("recycled lane connection of an ended session closed", "lane", id)
		conn.Close()
		return nil, wire.LaneOpen{}
	case s != sess:
		ls.refuse(conn, "no valid ticket of the session (unknown, used or expired) on a recycled lane connection")
		return nil, wire.LaneOpen{}
	}
	sess.set.Reused()
	return r, open
}

// maxIdleIncoming bounds the lanes a session keeps waiting for arrivals.
const maxIdleIncoming = 64

// roomToWait tells whether another lane may wait for arrivals.
func (s *laneSession) roomToWait() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.incoming) < maxIdleIncoming
}

// addIncoming keeps conn, lane id, for the next connection that arrives for the session, and
// returns it as it waits; nil, conn closed, when the session ended or has too many waiting.
func (s *laneSession) addIncoming(conn net.Conn, id uint64) *idleIncoming {
	in := &idleIncoming{conn: conn, id: id, watched: make(chan struct{}), carried: make(chan *lane.Lane, 1)}
	s.mu.Lock()
	if s.idle == nil || len(s.incoming) >= maxIdleIncoming {
		s.mu.Unlock()
		conn.Close()
		return nil
	}
	s.incoming = append(s.incoming, in)
	s.mu.Unlock()
	go func() {
		defer close(in.watched)
		var b [1]byte
		n, err := conn.Read(b[:])
		if n > 0 {
			err = errors.New("the client spoke before an arrival")
		}
		in.ended = err
		s.mu.Lock()
		defer s.mu.Unlock()
		if !in.taken {
			// The client's end is gone, or it spoke out of turn.
			s.incoming = slices.DeleteFunc(s.incoming, func(x *idleIncoming) bool { return x == in })
			conn.Close()
			in.settle(nil)
		}
	}()
	return in
}

// takeIncoming returns an idle incoming lane with its watcher stopped, or nil. The newest
// goes first: after a port-forward dropped, the oldest are the likeliest to be dead.
func (s *laneSession) takeIncoming() *idleIncoming {
	for {
		s.mu.Lock()
		if len(s.incoming) == 0 {
			s.mu.Unlock()
			return nil
		}
		in := s.incoming[len(s.incoming)-1]
		s.incoming = s.incoming[:len(s.incoming)-1]
		in.taken = true
		s.mu.Unlock()
		_ = in.conn.SetReadDeadline(time.Now())
		<-in.watched
		if !errors.Is(in.ended, os.ErrDeadlineExceeded) {
			in.conn.Close() // it ended while being taken
			in.settle(nil)
			continue
		}
		_ = in.conn.SetReadDeadline(time.Time{})
		return in
	}
}

// announced keeps what lane l announced, until it ends.
func (s *laneSession) announced(l *lane.Lane, arrival wire.Incoming) {
	s.mu.Lock()
	if s.arrivals == nil {
		s.arrivals = map[uint64]wire.Incoming{}
	}
	s.arrivals[l.ID()] = arrival
	s.mu.Unlock()
	go func() {
		<-l.Done()
		s.mu.Lock()
		delete(s.arrivals, l.ID())
		s.mu.Unlock()
	}()
}

// arrival returns what lane id announced, if it was taken for an arrival.
func (s *laneSession) arrival(id uint64) (wire.Incoming, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.arrivals[id]
	return a, ok
}

// dropIncoming closes waiting lane id, if it still waits.
func (s *laneSession) dropIncoming(id uint64) {
	s.mu.Lock()
	var gone *idleIncoming
	for i, in := range s.incoming {
		if in.id == id {
			gone = in
			s.incoming = slices.Delete(s.incoming, i, i+1)
			break
		}
	}
	s.mu.Unlock()
	if gone != nil {
		gone.conn.Close()
	}
}

// carryIncoming announces arrival on one of the client's idle incoming lanes and returns the
// lane, as a connection; false when the client has none (it then goes on a QUIC stream).
func (ls *lanes) carryIncoming(client *quic.Conn, arrival wire.Incoming) (laneConn, bool) {
	ls.mu.Lock()
	sess := ls.sessions[client]
	ls.mu.Unlock()
	if sess == nil {
		return laneConn{}, false
	}
	for {
		in := sess.takeIncoming()
		if in == nil {
			return laneConn{}, false
		}
		_ = in.conn.SetWriteDeadline(time.Now().Add(laneHeaderTimeout))
		if err := wire.WriteMessage(in.conn, arrival); err != nil {
			in.conn.Close()
			in.settle(nil)
			continue
		}
		_ = in.conn.SetWriteDeadline(time.Time{})
		l, err := sess.set.AddID(in.id, lane.Options{Budget: ls.budget, Recycle: sess.recycle})
		if err != nil {
			in.conn.Close()
			in.settle(nil)
			return laneConn{}, false
		}
		in.settle(l)
		local, remote := in.conn.LocalAddr(), in.conn.RemoteAddr()
		sess.announced(l, arrival)
		if err := l.Attach(in.conn, 0); err != nil {
			return laneConn{}, false
		}
		return laneConn{Lane: l, local: local, remote: remote}, true
	}
}

// laneConn is a lane as the net.Conn that the incoming connections' relays take.
type laneConn struct {
	*lane.Lane
	local, remote net.Addr
}

func (c laneConn) LocalAddr() net.Addr              { return c.local }
func (c laneConn) RemoteAddr() net.Addr             { return c.remote }
func (c laneConn) SetDeadline(time.Time) error      { return nil }
func (c laneConn) SetReadDeadline(time.Time) error  { return nil }
func (c laneConn) SetWriteDeadline(time.Time) error { return nil }

// checkTicket reads conn's LaneOpen and redeems its ticket, within timeout. It returns the
// session the ticket is good for, or nil, conn then closed and logged.
func (ls *lanes) checkTicket(conn net.Conn, timeout time.Duration) (*wire.Reader, wire.LaneOpen, *laneSession) {
	r, open, err := readLaneOpen(conn, timeout)
	if err != nil {
		ls.refuse(conn, err.Error())
		return nil, wire.LaneOpen{}, nil
	}
	sess, ended := ls.redeem(open.Ticket)
	switch {
	case ended:
		// The client's own lane, opened as its session ended: no stranger's.
		ls.log.Debug("lane connection of an ended session closed", "remote", conn.RemoteAddr().String())
		conn.Close()
	case sess == nil:
		ls.refuse(conn, "no valid ticket (unknown, used or expired)")
	}
	return r, open, sess
}

// readLaneOpen reads conn's next message, which must be a LaneOpen, within timeout; the
// deadline stays for what follows it, until the lane is named.
func readLaneOpen(conn net.Conn, timeout time.Duration) (*wire.Reader, wire.LaneOpen, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	r := wire.NewReader(conn)
	msg, err := r.ReadMessage()
	if err != nil {
		return nil, wire.LaneOpen{}, fmt.Errorf("no lane header: %w", err)
	}
	open, ok := msg.(wire.LaneOpen)
	if !ok {
		return nil, wire.LaneOpen{}, fmt.Errorf("unexpected first message %T", msg)
	}
	return r, open, nil
}

// reattach puts an existing lane on conn, after telling the client from where to resend.
//
// A client that re-attaches a lane as incoming lost the connection it was waiting on: if the
// lane was taken for an arrival, the arrival is announced again after the reply; if not, the
// lane is dropped from those waiting, since an arrival announced on its dead connection would
// never be seen.
func (ls *lanes) reattach(sess *laneSession, conn net.Conn, open wire.LaneOpen) {
	l := sess.set.Get(open.Lane)
	if l == nil {
		if open.Kind == wire.LaneIncoming {
			sess.dropIncoming(open.Lane)
		}
		conn.Close()
		return
	}
	arrival, announced := sess.arrival(open.Lane)
	received, err := l.Suspend()
	if err != nil {
		conn.Close()
		return
	}
	frames, err := wire.AppendMessage(nil, wire.LaneReply{Lane: open.Lane, Received: received})
	if err == nil && open.Kind == wire.LaneIncoming && announced {
		frames, err = wire.AppendMessage(frames, arrival)
	}
	if err == nil {
		_, err = conn.Write(frames)
	}
	if err != nil {
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if err := l.Attach(conn, open.Received); err != nil {
		sess.log.Warn("lane not re-attached", "lane", open.Lane, "err", err)
	}
}

// hold counts conn among the session's idle lane connections, closed if the session ends
// first; false when it has ended.
func (s *laneSession) hold(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		return false
	}
	s.idle[conn] = struct{}{}
	return true
}

// release takes conn out of the idle ones; false when the session ended meanwhile.
func (s *laneSession) release(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		return false
	}
	delete(s.idle, conn)
	return true
}

// dialLane dials for a lane and relays it, as dial does for a QUIC stream. It returns the
// lane's connection once the lane ended cleanly, for the next lane the client puts on it, when
// the client takes them back (FeatureLaneReuse); else nil.
func (s *server) dialLane(ctx context.Context, sess *laneSession, id uint64, conn net.Conn, req wire.Dial) net.Conn {
	target, reply := s.dialFromPod(ctx, sess.log, req)
	if err := wire.WriteMessage(conn, reply); err != nil || target == nil {
		conn.Close()
		if target != nil {
			target.Close()
		}
		return nil
	}
	l, err := sess.set.AddID(id, lane.Options{Budget: s.lanes.budget, Recycle: sess.recycle})
	if err == nil {
		err = l.Attach(conn, 0)
	} else {
		conn.Close()
	}
	if err != nil {
		target.Close()
		return nil
	}
	relayLane(l, target.(*net.TCPConn))
	target.Close()
	if !sess.recycle {
		return nil
	}
	<-l.Done() // once the client has the last bytes and ended its direction
	return l.Recycled()
}

// relayLane copies both ways between a lane and a connection (TCP, or a delivery from the
// sidecar that routes a shared port), passing each end of stream
// on as a half-close, and returns when both directions are done.
func relayLane(l *lane.Lane, conn halfCloser) {
	done := make(chan struct{})
	go func() {
		_, err := io.Copy(conn, l)
		if err != nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0) // the reset reaches the connection's client
			}
			conn.Close()
		} else {
			_ = conn.CloseWrite()
		}
		close(done)
	}()
	// The lane's WriteTo splices the other way; this way the bytes are kept for resending, so
	// they come into the process, in large reads.
	if _, err := l.ReadFrom(conn); err != nil {
		l.Abort()
	}
	_ = l.CloseWrite()
	<-done
	_ = l.Close()
}
