package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/remocal/kubectl-remocal/internal/deadline"
	"github.com/remocal/kubectl-remocal/internal/ratelog"
)

const (
	// headerTimeout bounds how long an accepted stream may take to say which session it continues.
	headerTimeout = 10 * time.Second
	// serverStall frees streams whose client vanished without closing them (a laptop put to sleep
	// leaves the kubelet's end of a port-forward open). It is long: while a QUIC connection lives,
	// keep-alives cross every stream every few seconds; only dead streams are this quiet.
	serverStall = 15 * time.Second
	// maxStreams bounds the streams open at once. Every process in the pod's network namespace
	// can connect to the loopback port, and each stream holds a 128 KiB read buffer and three
	// goroutines. A client needs one stream, two while it replaces one that dropped, and the
	// sidecar serves 16 clients.
	maxStreams = 32
	// overflowLogEvery spaces the warnings about streams refused or closed for want of room, which
	// a flood of connections would otherwise repeat for each one.
	overflowLogEvery = 10 * time.Second
)

const (
	errReplaced = wireError("packet stream replaced by a newer stream of the same session")
	errEvicted  = wireError("packet stream closed before naming its session: too many streams")
)

// serverTiming holds the durations of a StreamPacketServer, so tests can shorten them.
type serverTiming struct {
	headerTimeout time.Duration
	stall         time.Duration
}

// StreamPacketServer is the sidecar's end of the stream path: a [net.PacketConn] over the byte
// streams accepted on a listener. Each session (one client, see [SessionID]) appears as one stable
// peer address, whichever of its streams its packets arrive on, so a QUIC connection survives the
// client replacing a stream that dropped. Packets to a session go out on its newest stream; packets
// to a session that has no stream at the moment are dropped, and QUIC retransmits them.
//
// A stream continues a session only when it presents the session's secret token; see
// [SessionID]. At most maxStreams are open: past that the oldest stream still silent about its
// session gives way, and when every stream has named one a new stream is refused.
type StreamPacketServer struct {
	ln     net.Listener
	log    *slog.Logger
	in     *inbox
	timing serverTiming

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	links    map[*link]struct{}  // every open stream, so Close can end them
	unnamed  []*link             // the open streams that have not named their session, oldest first
	sessions map[SessionID]*link // the newest stream of each session
	overflow *ratelog.Limiter    // the warnings about streams refused or closed for want of room
}

var _ streamCarried = (*StreamPacketServer)(nil)

// NewStreamPacketServer serves the byte streams accepted on ln until Close, which also closes ln.
// log receives connection events; nil discards them.
func NewStreamPacketServer(ln net.Listener, log *slog.Logger) *StreamPacketServer {
	return newStreamPacketServer(ln, log, serverTiming{headerTimeout: headerTimeout, stall: serverStall})
}

func newStreamPacketServer(ln net.Listener, log *slog.Logger, timing serverTiming) *StreamPacketServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	closed := make(chan struct{})
	s := &StreamPacketServer{
		ln:       ln,
		log:      log,
		in:       newInbox(closed),
		timing:   timing,
		closed:   closed,
		links:    make(map[*link]struct{}),
		sessions: make(map[SessionID]*link),
		overflow: ratelog.New(overflowLogEvery),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *StreamPacketServer) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if deadline.IsClosed(s.closed) {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				s.log.Warn("packet stream listener closed; accepting no new streams", "addr", s.ln.Addr())
				return
			}
			// Running out of file descriptors passes; like net/http, wait and go on serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept packet stream", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.closed:
				return
			}
			continue
		}
		delay = 0
		l := s.admit(conn)
		if l == nil {
			conn.Close()
			if deadline.IsClosed(s.closed) {
				return
			}
			continue
		}
		s.wg.Add(1)
		go s.serve(l)
	}
}

// admit makes conn a link that Close can end, or returns nil when there is no room for it or
// Close has begun. With maxStreams open, the oldest stream that has not named its session gives
// way: a client sends its header as soon as it connects, so only a stream that says nothing grows
// old unnamed. When every open stream has named a session, conn is refused.
func (s *StreamPacketServer) admit(conn net.Conn) *link {
	s.mu.Lock()
	defer s.mu.Unlock()
	if deadline.IsClosed(s.closed) {
		return nil
	}
	if len(s.links) >= maxStreams {
		if len(s.unnamed) == 0 {
			s.noteOverflow("refused packet stream", conn.RemoteAddr())
			return nil
		}
		oldest := s.unnamed[0]
		s.forgetLocked(oldest)
		oldest.fail(errEvicted)
		s.noteOverflow("closed a silent packet stream", oldest.conn.RemoteAddr())
	}
	l := newLink(conn, s.timing.stall)
	s.links[l] = struct{}{}
	s.unnamed = append(s.unnamed, l)
	return l
}

// noteOverflow warns about a stream refused or closed for want of room, at most once every
// overflowLogEvery, with how many there were since the last warning. s.mu is held.
func (s *StreamPacketServer) noteOverflow(msg string, remote net.Addr) {
	if skipped, ok := s.overflow.Allow(); ok {
		s.log.Warn(msg, "remote", remote, "reason", "too many packet streams", "max", maxStreams, "since_last_warning", skipped+1)
	}
}

// namedLocked records that l has named its session, so it no longer gives way to a new stream.
// s.mu is held.
func (s *StreamPacketServer) namedLocked(l *link) {
	s.unnamed = slices.DeleteFunc(s.unnamed, func(u *link) bool { return u == l })
}

// forgetLocked stops counting l as open. s.mu is held.
func (s *StreamPacketServer) forgetLocked(l *link) {
	delete(s.links, l)
	s.namedLocked(l)
}

// serve runs one stream: its header, then its frames until it ends.
func (s *StreamPacketServer) serve(l *link) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.forgetLocked(l)
		s.mu.Unlock()
		l.close()
	}()
	remote := l.conn.RemoteAddr()
	token, err := l.readHeader(s.timing.headerTimeout)
	if err != nil {
		if !deadline.IsClosed(s.closed) && !errors.Is(err, errEvicted) {
			s.log.Warn("refused packet stream", "remote", remote, "err", err)
		}
		return
	}
	// The session is found by the token's hash: only a stream that holds the token can take the
	// place of the session's stream, and what logs and addresses show of a session is no use.
	id := token.id()

	s.mu.Lock()
	if _, open := s.links[l]; !open {
		// It gave way to a newer stream just as its header arrived.
		s.mu.Unlock()
		return
	}
	s.namedLocked(l)
	old := s.sessions[id]
	s.sessions[id] = l
	s.mu.Unlock()
	if old != nil {
		// The client dials a new stream only when it has given up on the old one.
		old.fail(errReplaced)
	}
	s.log.Debug("packet stream connected", "session", id, "remote", remote, "replaces_stream", old != nil)

	from := streamAddr{id: id, role: "client"}
	err = l.readFrames(func(p []byte) bool { return s.in.put(p, from, l.done) })

	s.mu.Lock()
	if s.sessions[id] == l {
		delete(s.sessions, id)
	}
	s.mu.Unlock()
	s.log.Debug("packet stream ended", "session", id, "remote", remote, "err", err)
}

// ReadFrom returns the next packet from any session, and the session's address.
func (s *StreamPacketServer) ReadFrom(b []byte) (int, net.Addr, error) {
	return s.in.readFrom(b)
}

// WriteTo sends b to the session at addr on its newest stream, or drops it when the session has no
// stream at the moment. It waits only briefly when the stream is congested (see link.send).
func (s *StreamPacketServer) WriteTo(b []byte, addr net.Addr) (int, error) {
	if deadline.IsClosed(s.closed) {
		return 0, &net.OpError{Op: "write", Net: streamNetwork, Addr: addr, Err: net.ErrClosed}
	}
	to, ok := addr.(streamAddr)
	if !ok || to.role != "client" {
		return 0, &net.OpError{Op: "write", Net: streamNetwork, Addr: addr, Err: fmt.Errorf("not a session address: %T", addr)}
	}
	if err := checkDatagramLen(b); err != nil {
		return 0, &net.OpError{Op: "write", Net: streamNetwork, Addr: addr, Err: err}
	}
	s.mu.Lock()
	l := s.sessions[to.id]
	s.mu.Unlock()
	if l != nil {
		l.send(b)
	}
	return len(b), nil
}

// Close stops accepting, closes the listener and every stream, and waits for them to end.
func (s *StreamPacketServer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("close packet stream listener: %w", cerr)
		}
		s.mu.Lock()
		for l := range s.links {
			l.fail(errLinkClosed)
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

// LocalAddr is the listener's address.
func (s *StreamPacketServer) LocalAddr() net.Addr { return s.ln.Addr() }

// SetDeadline sets the read deadline; see SetWriteDeadline.
func (s *StreamPacketServer) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

// SetReadDeadline makes a blocked or later ReadFrom return a timeout at t.
func (s *StreamPacketServer) SetReadDeadline(t time.Time) error {
	s.in.deadline.Set(t)
	return nil
}

// SetWriteDeadline does nothing: WriteTo never blocks longer than a short, fixed wait.
func (s *StreamPacketServer) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer does nothing and succeeds. quic-go tries to enlarge the socket buffers of any
// packet connection that has this method and, for one that has not, prints a warning through the
// standard logger on the process's stderr; the buffering here is the stream's own.
func (s *StreamPacketServer) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing and succeeds; see SetReadBuffer.
func (s *StreamPacketServer) SetWriteBuffer(int) error { return nil }

func (s *StreamPacketServer) carriedInStream() {}

// checkDatagramLen refuses what a frame cannot carry, as a UDP socket refuses an oversized datagram.
func checkDatagramLen(b []byte) error {
	if len(b) == 0 || len(b) > maxDatagramLen {
		return fmt.Errorf("datagram of %d bytes: want 1 to %d", len(b), maxDatagramLen)
	}
	return nil
}
