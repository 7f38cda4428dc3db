package sidecarclient

import (
	"context"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Subscription is what the session asks of a pod port: the mode (wire.ModeSteal or
// wire.ModeMirror) and, for a steal, the HTTP filter: the requests that match each of Header,
// Path and Filter that is set.
type Subscription struct {
	Mode   string
	Header string // "Name: regex", or empty
	Path   string // a regex, or empty
	// Filter is what Header and Path cannot say, or nil: only a sidecar that offers
	// wire.FeatureHTTPFilterTree reads it.
	Filter *wire.HTTPFilter
}

// Filtered reports whether the subscription takes only some HTTP requests.
func (s Subscription) Filtered() bool { return s.Header != "" || s.Path != "" || s.Filter != nil }

// feature is the sidecar feature the subscription needs.
func (s Subscription) feature() string {
	switch {
	case s.Filter != nil:
		return wire.FeatureHTTPFilterTree
	case s.Header != "" || s.Path != "":
		return wire.FeatureHTTPFilter
	case s.Mode == wire.ModeMirror:
		return wire.FeatureMirror
	default:
		return wire.FeatureSteal
	}
}

// Subscribe asks the sidecar to send the pod's new connections on port to this session, each
// as a stream that AcceptIncoming returns. The session gives the port back when it closes.
func (s *Session) Subscribe(ctx context.Context, port uint16, sub Subscription) (err error) {
	if err := s.CanSubscribe(sub); err != nil {
		return err
	}
	defer s.takeControl(ctx)(&err)
	err = s.request(fmt.Sprintf("subscribe port %d", port), wire.Subscribe{Port: port, Mode: sub.Mode, Header: sub.Header, Path: sub.Path, Filter: sub.Filter})
	if err == nil && s.lanes != nil && sub.Mode == wire.ModeSteal {
		s.lanes.subscribed()
	}
	if err == nil {
		if s.subscribed == nil {
			s.subscribed = map[uint16]bool{}
		}
		s.subscribed[port] = true
	}
	return err
}

// CanSubscribe fails with a *FeatureError when the sidecar cannot serve sub: an older sidecar
// without the feature it needs. Subscribe checks it too; a caller checks it first to refuse
// before the ports are asked for.
func (s *Session) CanSubscribe(sub Subscription) error {
	action := sub.feature()
	switch action {
	case wire.FeatureHTTPFilterTree:
		action = "filter HTTP requests by method, query parameter, all-of or any-of"
	case wire.FeatureHTTPFilter:
		action = "filter HTTP requests"
	}
	return s.need(sub.feature(), action)
}

// Unsubscribe gives the pod's port back to its app.
func (s *Session) Unsubscribe(ctx context.Context, port uint16) (err error) {
	defer s.takeControl(ctx)(&err)
	return s.unsubscribe(port)
}

// unsubscribe is Unsubscribe with controlMu held.
func (s *Session) unsubscribe(port uint16) error {
	err := s.request(fmt.Sprintf("unsubscribe port %d", port), wire.Unsubscribe{Port: port})
	if err == nil {
		delete(s.subscribed, port)
	}
	return err
}

// unsubscribeAll gives every port back before the session closes, and waits for the sidecar to
// say so: a closing connection's last packets can be lost (a port-forward torn down with it),
// and the sidecar would then hold the ports until QUIC's idle timeout, refusing a new session
// started right after this one. Bounded by timeout.
func (s *Session) unsubscribeAll(timeout time.Duration) {
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if len(s.subscribed) == 0 {
		return
	}
	_ = s.control.SetDeadline(time.Now().Add(timeout))
	for port := range s.subscribed {
		if err := s.unsubscribe(port); err != nil {
			s.log.Info("give the pod's port back at the session's end", "port", port, "err", err)
			return
		}
	}
}

// request sends a Subscribe or an Unsubscribe and reads the sidecar's answer. controlMu is held.
func (s *Session) request(what string, msg wire.Message) error {
	reply, err := roundTrip[wire.SubscribeReply](s, what, "refused to "+what, msg)
	if err != nil {
		return err
	}
	return reply.Err()
}

// Incoming is a connection that reached a port this session subscribed, passed on by the
// sidecar. For a mirrored port it carries the copy of what the client sent, and what is
// written to it goes nowhere.
type Incoming struct {
	*Stream
	Port   uint16 // the pod's port
	Remote string // host:port of the connection's client, as the pod saw it
}

// ServeIncoming hands each connection the sidecar passes on to handle, in a goroutine of its
// own, until the session or ctx ends, and returns why it ended. Each stream's header is read in
// that goroutine, so that one slow to arrive (a lost packet) holds up no other connection. A
// stream that does not start as a connection (never, from a sidecar) is abandoned.
func (s *Session) ServeIncoming(ctx context.Context, handle func(*Incoming)) error {
	if s.lanes != nil {
		s.lanes.serveIncoming(ctx, handle)
	}
	for {
		stream, err := s.conn.AcceptStream(ctx)
		if err != nil {
			return err
		}
		go func() {
			if in, ok := readIncoming(ctx, stream); ok {
				handle(in)
			}
		}()
	}
}

// readIncoming reads the header of a stream the sidecar opened, or abandons the stream.
func readIncoming(ctx context.Context, stream *quic.Stream) (*Incoming, bool) {
	stop := context.AfterFunc(ctx, func() { abandon(stream) })
	msg, err := wire.NewReader(stream).ReadMessage()
	stop()
	in, ok := msg.(wire.Incoming)
	if err != nil || !ok {
		abandon(stream)
		return nil, false
	}
	return &Incoming{Stream: &Stream{c: quicStream{stream}}, Port: in.Port, Remote: in.Remote}, true
}
