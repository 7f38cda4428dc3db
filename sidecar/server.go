package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/semaphore"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Application error codes on QUIC connections and streams.
const (
	codeOK             quic.ApplicationErrorCode = 0
	codeTooMany        quic.ApplicationErrorCode = 2
	streamCodeProtocol quic.StreamErrorCode      = 1
	streamCodeTooMany  quic.StreamErrorCode      = 2
)

// Bounds on what clients may open at once, beside the memory budgets (budget.go). A
// connection can hold QUIC's receive windows and up to transport's 4,096 streams; a stream a
// goroutine or two and their buffers.
const (
	// maxClients bounds the client connections: a session is one, ls and clean one each
	// while they look.
	maxClients = 16
	// maxStreams bounds the streams of all clients together: each proxied connection is one.
	maxStreams = 4096
	// maxClientSubscriptions bounds the ports one client subscribes.
	maxClientSubscriptions = 64
)

// server handles the client's connections.
type server struct {
	cfg   Config
	log   *slog.Logger
	idle  *idleTimer
	in    *incoming
	roots targetRootCache
	files *budget
	// clients and streams count what is open, against maxClients and maxStreams.
	clients, streams *semaphore.Weighted
	// maxSubscriptions is maxClientSubscriptions but in tests.
	maxSubscriptions int
	// subscribing makes a client's count of subscriptions and its new one one step.
	subscribing sync.Mutex
	// target is the target container's instance, once a client named it.
	target targetProcess
	// lanes serves the clients' lanes: their tickets and lane connections.
	lanes *lanes
	// sessions are the clients that said hello, with their labels, for the listing.
	sessions *sessions
	// features are what the hello reply offers (offeredFeatures).
	features []string
}

func newServer(cfg Config, log *slog.Logger) *server {
	s := &server{
		cfg:     cfg,
		log:     log,
		idle:    newIdleTimer(cfg.TTL),
		in:      newIncoming(log, cfg.Name),
		files:   newBudget("file contents", fileBudget),
		clients: semaphore.NewWeighted(maxClients),
		streams: semaphore.NewWeighted(maxStreams),

		maxSubscriptions: maxClientSubscriptions,
		sessions:         newSessions(),
		features:         offeredFeatures(canRedirect()),
	}
	s.lanes = newLanes(s, log)
	s.in.lanes = s.lanes.carryIncoming
	return s
}

// acceptor is a QUIC listener: a transport.Listener, or a bare quic.Listener in tests.
type acceptor interface {
	Accept(context.Context) (*quic.Conn, error)
}

// serve accepts connections until the listener closes.
func (s *server) serve(ctx context.Context, ln acceptor) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("accept quic connection: %w", err)
		}
		if !s.clients.TryAcquire(1) {
			s.log.WarnContext(ctx, "client refused", "client", conn.RemoteAddr().String(), "reason", "too many clients")
			_ = conn.CloseWithError(codeTooMany, fmt.Sprintf("the sidecar serves %d clients at once", maxClients))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.clients.Release(1)
			s.handleConn(ctx, conn)
		}()
	}
}

// handleConn serves one client connection: one control stream and any number of data streams,
// each told apart by its first message.
func (s *server) handleConn(ctx context.Context, conn *quic.Conn) {
	disconnected := s.idle.Connected()
	var inspectOnly atomic.Bool // the client's hello said it only looks
	defer func() { disconnected(!inspectOnly.Load()) }()
	// Whatever ends the connection (closed, or silent for the QUIC idle timeout) ends its
	// subscriptions: the pod's traffic never stays redirected to a client that is gone.
	defer s.in.dropClient(conn)
	defer s.sessions.close(conn)
	log := s.log.With("client", conn.RemoteAddr().String())
	log.InfoContext(ctx, "client connected")
	defer func() {
		reason := "sidecar stopping"
		if cause := context.Cause(conn.Context()); cause != nil {
			reason = cause.Error()
		}
		log.InfoContext(ctx, "client disconnected", "reason", reason)
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// When the sidecar stops, the connection is closed before handle returns, and so before
	// the listener and its socket close: closed later, its CONNECTION_CLOSE would never be
	// sent, and the client would learn why only from its idle timeout.
	defer func() {
		switch {
		case errors.Is(context.Cause(ctx), errMaxLifetime):
			_ = conn.CloseWithError(quic.ApplicationErrorCode(wire.CloseMaxLifetime), errMaxLifetime.Error())
		case ctx.Err() != nil:
			_ = conn.CloseWithError(codeOK, "sidecar stopping")
		}
	}()
	for {
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		if !s.streams.TryAcquire(1) {
			refuseStream(stream)
			continue
		}
		go func() {
			defer s.streams.Release(1)
			s.handleStream(ctx, log, conn, stream, &inspectOnly)
		}()
	}
}

func (s *server) handleStream(ctx context.Context, log *slog.Logger, conn *quic.Conn, stream *quic.Stream, inspectOnly *atomic.Bool) {
	r := wire.NewReader(stream)
	first, err := r.ReadMessage()
	if err != nil {
		rejectStream(stream, fmt.Errorf("read first message: %w", err))
		return
	}
	switch m := first.(type) {
	case wire.Hello:
		inspect := slices.Contains(m.Features, wire.FeatureInspect)
		inspectOnly.Store(inspect)
		s.sessions.open(conn, time.Now(), inspect)
		s.control(ctx, log, conn, stream, r, m)
	case wire.Dial:
		s.dial(ctx, log, stream, m)
	case wire.FSRequest:
		s.serveFS(ctx, log, stream, r, m)
	case wire.LaneControl:
		s.lanes.serveStream(ctx, log, conn, stream, r)
	default:
		rejectStream(stream, fmt.Errorf("unexpected first message %T", first))
	}
}

// control answers the hello, then requests in order until the stream ends.
func (s *server) control(ctx context.Context, log *slog.Logger, conn *quic.Conn, stream *quic.Stream, r *wire.Reader, hello wire.Hello) {
	defer stream.Close()
	if hello.Version != wire.Version {
		_ = wire.WriteMessage(stream, wire.Error{Code: wire.ErrCodeVersion, Reason: fmt.Sprintf("sidecar speaks protocol %d, client %d", wire.Version, hello.Version)})
		return
	}
	reply := wire.HelloReply{Version: wire.Version, Features: wire.Negotiate(hello.Features, s.features), Sidecar: version.Get().Version}
	if pid, err := s.target.pid(s.cfg.ProcRoot); err == nil {
		reply.TargetPID = int32(pid)
	}
	log.InfoContext(ctx, "hello", "clientVersion", hello.Client, "features", reply.Features)
	s.sessions.negotiated(conn, reply.Features)
	if err := wire.WriteMessage(stream, reply); err != nil {
		return
	}
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rejectStream(stream, err)
			}
			return
		}
		var answer wire.Message
		switch m := msg.(type) {
		case wire.FileRequest:
			if err := s.sendFile(ctx, stream, m.Path); err != nil {
				return
			}
			continue
		case wire.EnvRequest:
			if err := s.sendEnviron(ctx, stream); err != nil {
				return
			}
			continue
		case wire.SessionLabel:
			// The one message without an answer: the label costs the session's start no
			// round trip.
			s.sessions.label(conn, m.Label)
			log.InfoContext(ctx, "session label", "label", m.Label)
			continue
		case wire.Heartbeat:
			answer = m
		case wire.Subscribe:
			answer = subscribeReply(s.subscribe(ctx, conn, m))
		case wire.Unsubscribe:
			answer = subscribeReply(s.in.unsubscribe(conn, m.Port))
		case wire.Redirects:
			answer = s.redirects(ctx, log, m.Clean)
		case wire.Subscriptions:
			answer = s.subscriptions(conn)
		case wire.Sessions:
			answer = s.listSessions(ctx, conn)
		case wire.Target:
			answer = s.nameTarget(ctx, log, m)
		default:
			rejectStream(stream, fmt.Errorf("unexpected message %T on the control stream", msg))
			return
		}
		if err := wire.WriteMessage(stream, answer); err != nil {
			return
		}
	}
}

// subscribe takes a subscription for conn, up to maxClientSubscriptions ports; the same port
// again is no new one.
func (s *server) subscribe(ctx context.Context, conn *quic.Conn, req wire.Subscribe) error {
	s.subscribing.Lock()
	defer s.subscribing.Unlock()
	mine := 0
	for _, sub := range s.in.list(conn) {
		if sub.Mine && sub.Port != req.Port {
			mine++
		}
	}
	if mine >= s.maxSubscriptions {
		return fmt.Errorf("port %d: this client subscribed %d ports already, the most it may: %w", req.Port, mine, syscall.ENOSPC)
	}
	return s.in.subscribe(ctx, conn, s.sessions.labelOf(conn), req)
}

// redirects answers a Redirects request.
func (s *server) redirects(ctx context.Context, log *slog.Logger, clean bool) wire.Message {
	tables, err := redirectTables(ctx, log, clean)
	if err != nil {
		return wire.ErrorOf(err)
	}
	return wire.RedirectsReply{Tables: tables}
}

// nameTarget answers a Target request.
func (s *server) nameTarget(ctx context.Context, log *slog.Logger, m wire.Target) wire.Message {
	pid, err := s.target.name(s.cfg.ProcRoot, m.ContainerID)
	if err != nil {
		return wire.ErrorOf(err)
	}
	log.InfoContext(ctx, "target", "container", shortID(m.ContainerID), "pid", pid)
	return wire.TargetReply{PID: int32(pid)}
}

// subscriptions answers a Subscriptions request; a list too long for one frame (far beyond a
// real pod's) is an Error, not a broken control stream.
func (s *server) subscriptions(conn *quic.Conn) wire.Message {
	reply := wire.SubscriptionsReply{Subscriptions: s.in.list(conn)}
	if _, err := wire.AppendMessage(nil, reply); err != nil {
		return wire.ErrorOf(err)
	}
	return reply
}

// sendEnviron answers an EnvRequest: the target's environment in as many replies as it takes.
func (s *server) sendEnviron(ctx context.Context, stream *quic.Stream) error {
	replies, err := s.environ(ctx)
	if err != nil {
		return wire.WriteMessage(stream, wire.ErrorOf(err))
	}
	for _, r := range replies {
		if err := wire.WriteMessage(stream, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) environ(ctx context.Context) ([]wire.EnvReply, error) {
	pid, err := s.target.pid(s.cfg.ProcRoot)
	if err != nil {
		return nil, err
	}
	env, err := readEnviron(ctx, s.cfg.ProcRoot, pid)
	if err != nil {
		return nil, fmt.Errorf("%w (a target running as another user needs the SYS_PTRACE capability, or CAP_SETUID and CAP_SETGID to open it as that user)", err)
	}
	return wire.SplitEnviron(env)
}

// dial connects from the pod's network namespace and then relays bytes both ways. The reply
// carries the connect's errno, so the client can return the same result the app would get
// inside the pod (refused stays refused, unreachable stays unreachable).
func (s *server) dial(ctx context.Context, log *slog.Logger, stream *quic.Stream, req wire.Dial) {
	if req.Network != "tcp" && req.Network != "udp" {
		refuseDial(stream, wire.DialReply{Errno: wire.ErrnoOf(errUnsupportedNetwork), Reason: "networks are tcp and udp"})
		return
	}
	target, reply := s.dialFromPod(ctx, log, req)
	if target == nil {
		refuseDial(stream, reply)
		return
	}
	defer target.Close()
	if err := wire.WriteMessage(stream, reply); err != nil {
		return
	}
	if udp, ok := target.(*net.UDPConn); ok {
		relayDatagrams(stream, udp, s.udpIdle())
		return
	}
	relay(stream, target.(*net.TCPConn))
}

// dialFromPod connects as req asks, within its timeout, and returns the connection and the
// reply to send; the connection is nil when the dial failed, and the reply says why.
func (s *server) dialFromPod(ctx context.Context, log *slog.Logger, req wire.Dial) (net.Conn, wire.DialReply) {
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 || timeout > time.Minute {
		timeout = sidecarapi.DialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target, err := (&net.Dialer{}).DialContext(dctx, req.Network, req.Address)
	if err != nil {
		log.DebugContext(ctx, "dial failed", "address", req.Address, "err", err)
		return nil, wire.DialReply{Errno: wire.ErrnoOf(err), Reason: err.Error()}
	}
	return target, wire.DialReply{}
}

var errUnsupportedNetwork = errors.New("unsupported network")

// refuseDial answers a Dial that failed and ends the stream both ways. Stopping our read makes
// the client reset its side, so the stream is done, and its place in the connection's stream
// limit free again, even when the client never closes it.
func refuseDial(stream *quic.Stream, reply wire.DialReply) {
	_ = wire.WriteMessage(stream, reply)
	stream.CancelRead(0)
	_ = stream.Close()
}

// relay copies both ways, passing each side's end of stream on as a half-close, and returns when
// both directions are done.
func relay(stream *quic.Stream, conn halfCloser) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, stream)
		_ = conn.CloseWrite()
		close(done)
	}()
	_, err := io.Copy(stream, conn)
	if err != nil {
		stream.CancelWrite(streamCodeProtocol)
	} else {
		_ = stream.Close()
	}
	<-done
}

// refuseStream ends a stream past maxStreams at once, both ways: the client sees it reset.
func refuseStream(stream *quic.Stream) {
	stream.CancelRead(streamCodeTooMany)
	stream.CancelWrite(streamCodeTooMany)
}

// rejectStream ends a stream whose peer broke the protocol, with the reason, without touching
// the rest of the connection.
func rejectStream(stream *quic.Stream, err error) {
	_ = wire.WriteMessage(stream, wire.Error{Code: wire.ErrCodeProtocol, Reason: err.Error()})
	stream.CancelRead(streamCodeProtocol)
	_ = stream.Close()
}

func subscribeReply(err error) wire.SubscribeReply {
	if err == nil {
		return wire.SubscribeReply{}
	}
	return wire.SubscribeReply{Errno: wire.ErrnoOf(err), Reason: err.Error()}
}
