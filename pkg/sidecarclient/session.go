package sidecarclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Options are what a session offers the sidecar, and where it logs.
type Options struct {
	// Inspect says the session only looks (ls, clean): the sidecar then leaves its TTL as it
	// was when the session ends.
	Inspect bool
	// Logger gets the link's statistics at the end, and what failed while closing; nil
	// discards them.
	Logger *slog.Logger
	// Lanes opens lane connections to the sidecar: with it, and a sidecar that has the lanes
	// feature, each TCP connection gets a lane of its own. Nil carries them on QUIC streams.
	Lanes LaneDialer
	// Label names the session's user in the sidecar's listing (wire.SessionLabel); it must
	// pass wire.CheckLabel. "" sends none, as an older plugin.
	Label string
}

// Session is an authenticated QUIC connection to a sidecar with its control stream open. Its
// methods are safe for concurrent use.
type Session struct {
	conn *quic.Conn
	log  *slog.Logger
	// controlMu keeps each request and its replies together on the control stream, which
	// the callers' goroutines share.
	controlMu sync.Mutex
	control   *quic.Stream
	reader    *wire.Reader
	hello     wire.HelloReply
	// subscribed holds the pod ports this session took (controlMu).
	subscribed map[uint16]bool
	// lanes carries TCP connections, when both ends have them; nil otherwise.
	lanes *lanes
}

// features are what this client can use; inspect is as in Options.
func features(inspect bool) []string {
	return slices.DeleteFunc(sidecarapi.Features(), func(f string) bool {
		return f == wire.FeatureInspect && !inspect
	})
}

// New opens the control stream on conn and exchanges hellos. The session owns conn from then
// on, and closes it when the hello fails. A sidecar that refuses the hello (another protocol
// version) returns a *RefusedError.
func New(ctx context.Context, conn *quic.Conn, opts Options) (*Session, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{conn: conn, log: log}
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open control stream: %w", err)
	}
	s.control, s.reader = stream, wire.NewReader(stream)
	if err := wire.WriteMessage(stream, wire.Hello{Version: wire.Version, Features: features(opts.Inspect), Client: version.Get().Version}); err != nil {
		s.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	msg, err := s.reader.ReadMessage()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("read hello reply: %w", err)
	}
	switch m := msg.(type) {
	case wire.HelloReply:
		s.hello = m
		if opts.Label != "" && s.has(wire.FeatureSessions) {
			// Not answered: the session goes on at once.
			if err := wire.WriteMessage(stream, wire.SessionLabel{Label: opts.Label}); err != nil {
				s.Close()
				return nil, fmt.Errorf("send the session's label: %w", err)
			}
		}
		if opts.Lanes != nil && s.has(wire.FeatureLanes) {
			// Without lanes the session still works, on QUIC streams alone.
			if s.lanes, err = startLanes(ctx, conn, opts.Lanes, s.has(wire.FeatureLaneReuse), log); err != nil {
				log.Warn("lanes unavailable, carrying connections on QUIC streams", "err", err)
			}
		}
		return s, nil
	case wire.Error:
		s.Close()
		return nil, &RefusedError{What: "refused the session", Reason: m}
	default:
		s.Close()
		return nil, fmt.Errorf("unexpected hello reply %T", msg)
	}
}

// has tells whether the sidecar offered feature in its hello.
func (s *Session) has(feature string) bool {
	return slices.Contains(s.hello.Features, feature)
}

// CanRedirect tells whether the sidecar may redirect the pod's ports, which a steal needs. Only
// a sidecar that cannot says so (wire.FeatureNoRedirect); an older one's steal fails when the
// port is subscribed.
func (s *Session) CanRedirect() bool {
	return !s.has(wire.FeatureNoRedirect)
}

// need fails with a *FeatureError when the sidecar did not offer feature, which action needs.
func (s *Session) need(feature, action string) error {
	if s.has(feature) {
		return nil
	}
	return &FeatureError{Feature: feature, Action: action}
}

// roundTrip sends req on the control stream and reads its one reply, an R. A wire.Error reply
// is a *RefusedError that says the sidecar refused; any other reply gives up the control
// stream. what names the request in the errors. controlMu is held.
func roundTrip[R wire.Message](s *Session, what, refused string, req wire.Message) (R, error) {
	var zero R
	if err := wire.WriteMessage(s.control, req); err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	msg, err := s.reader.ReadMessage()
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	switch m := msg.(type) {
	case R:
		return m, nil
	case wire.Error:
		return zero, &RefusedError{What: refused, Reason: m}
	default:
		s.outOfStep()
		return zero, fmt.Errorf("%s: unexpected reply %T", what, msg)
	}
}

// outOfStep gives up the control stream after leaving an answer unread: what follows on it
// would be the rest of that answer, not the next one, so every later request must fail (and
// does, on the cancelled stream) rather than take those replies for its own. controlMu is held.
func (s *Session) outOfStep() {
	s.control.CancelRead(0)
}

// takeControl takes the control stream for one request bounded by ctx, and returns what gives
// it back, to be deferred with the request's error. When ctx ends before the answer is read,
// the read is broken off: the stream is then out of step, and the request's error says why.
func (s *Session) takeControl(ctx context.Context) (release func(err *error)) {
	s.controlMu.Lock()
	stop := context.AfterFunc(ctx, func() { _ = s.control.SetReadDeadline(time.Now()) })
	return func(err *error) {
		if !stop() {
			s.outOfStep()
			if *err != nil {
				*err = fmt.Errorf("%w (%w)", context.Cause(ctx), *err)
			}
		}
		s.controlMu.Unlock()
	}
}

// Done is closed when the link to the sidecar ends: closed by either side, or lost.
func (s *Session) Done() <-chan struct{} {
	return s.conn.Context().Done()
}

// Err says why the link ended, nil while it lasts. The sidecar's end at its maximum lifetime
// is ErrMaxLifetime (errors.Is).
func (s *Session) Err() error {
	cause := context.Cause(s.conn.Context())
	if endedAtMaxLifetime(cause) {
		return fmt.Errorf("%w: %w", ErrMaxLifetime, cause)
	}
	return cause
}

// endedAtMaxLifetime tells whether the sidecar closed the connection because it reached its
// maximum lifetime.
func endedAtMaxLifetime(cause error) bool {
	var appErr *quic.ApplicationError
	return errors.As(cause, &appErr) && appErr.Remote && uint64(appErr.ErrorCode) == wire.CloseMaxLifetime
}

// Close gives back the ports the session took and ends the session; the sidecar keeps running
// for the next one until its TTL. What carries the connection (its socket, a port-forward) is
// the caller's to close after.
func (s *Session) Close() error {
	if s.control != nil {
		s.unsubscribeAll(2 * time.Second)
		_ = s.control.Close()
	}
	if s.lanes != nil {
		s.lanes.close()
		st := s.lanes.set.Stats()
		s.log.Info("lane statistics", "opened", st.Opened, "onReusedConnections", st.Reused, "resumed", st.Resumed, "refused", st.Refused,
			"bytesSent", st.BytesOut, "bytesReceived", st.BytesIn)
	}
	st := s.conn.ConnectionStats()
	s.log.Info("link statistics", "smoothedRTT", st.SmoothedRTT, "minRTT", st.MinRTT, "congestionWindow", st.CongestionWindow,
		"bytesSent", st.BytesSent, "bytesReceived", st.BytesReceived, "packetsLost", st.PacketsLost)
	return s.conn.CloseWithError(0, "session ended")
}
