package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// subscription is what the plugin asks of a pod port: the mode and, for a steal, the HTTP
// filter.
type subscription struct {
	Mode   string
	Header string // "Name: regex", or empty
	Path   string // a regex, or empty
}

// describeFilter says which requests the filter takes.
func (s subscription) describeFilter() string {
	var parts []string
	if s.Header != "" {
		parts = append(parts, "header "+strconv.Quote(s.Header))
	}
	if s.Path != "" {
		parts = append(parts, "path "+strconv.Quote(s.Path))
	}
	return strings.Join(parts, " and ")
}

// feature is the sidecar feature the subscription needs.
func (s subscription) feature() string {
	switch {
	case s.Header != "" || s.Path != "":
		return wire.FeatureHTTPFilter
	case s.Mode == wire.ModeMirror:
		return wire.FeatureMirror
	default:
		return wire.FeatureSteal
	}
}

// Subscribe asks the sidecar to send the pod's new connections on port to this session.
func (s *session) Subscribe(ctx context.Context, port uint16, sub subscription) error {
	if !slices.Contains(s.hello.Features, sub.feature()) {
		return &userError{msg: "the sidecar cannot " + sub.feature() + ": a sidecar of an older remocal version (pass --sidecar-image matching this plugin)"}
	}
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	err := s.request(fmt.Sprintf("subscribe port %d", port), wire.Subscribe{Port: port, Mode: sub.Mode, Header: sub.Header, Path: sub.Path})
	if err == nil {
		if s.subscribed == nil {
			s.subscribed = map[uint16]bool{}
		}
		s.subscribed[port] = true
	}
	return err
}

// Unsubscribe gives the pod's port back to its app.
func (s *session) Unsubscribe(_ context.Context, port uint16) error {
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	return s.unsubscribe(port)
}

// unsubscribe is Unsubscribe with controlMu held.
func (s *session) unsubscribe(port uint16) error {
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
func (s *session) unsubscribeAll(timeout time.Duration) {
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if len(s.subscribed) == 0 {
		return
	}
	_ = s.control.SetDeadline(time.Now().Add(timeout))
	for port := range s.subscribed {
		if err := s.unsubscribe(port); err != nil {
			klog.V(1).InfoS("give the pod's port back at the session's end", "port", port, "err", err)
			return
		}
	}
}

// request sends a Subscribe or an Unsubscribe and reads the sidecar's answer. controlMu is held.
func (s *session) request(what string, msg wire.Message) error {
	if err := wire.WriteMessage(s.control, msg); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	answer, err := s.reader.ReadMessage()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	reply, ok := answer.(wire.SubscribeReply)
	if !ok {
		s.outOfStep()
		return fmt.Errorf("%s: unexpected reply %T", what, answer)
	}
	return reply.Err()
}

// listenerCheckPeriod is how often the router looks for listeners the program closed: a closed
// listener gives its pod port back to the pod's app within about this long.
const listenerCheckPeriod = time.Second

// incomingRouter subscribes the pod ports of the program's listeners and connects the streams
// the sidecar opens for them, one per connection that reached the pod, to those listeners.
type incomingRouter struct {
	sess   *session
	p      *progress
	choice portChoice
	sub    subscription
	// arrivals tells the layer whose connection each one to the program is: set once the
	// layer's supervisor exists, before the program runs.
	arrivals interface {
		ExpectArrival(local, client netip.AddrPort) (done func())
	}

	mu     sync.Mutex
	routes map[uint16]netip.AddrPort // pod port -> the program's listener
}

func newIncomingRouter(sess *session, p *progress, choice portChoice, sub subscription) *incomingRouter {
	return &incomingRouter{sess: sess, p: p, choice: choice, sub: sub, routes: map[uint16]netip.AddrPort{}}
}

// verb says what the subscription does, for the user.
func (r *incomingRouter) verb() string {
	if r.sub.Mode == wire.ModeMirror {
		return "mirror"
	}
	return "steal"
}

// listen subscribes the pod's port of a new listener of the program, as the port choice says.
func (r *incomingRouter) listen(ctx context.Context, ev layer.ListenEvent) {
	port, ok := r.choice.remote(ev.Addr.Port())
	if !ok {
		return
	}
	local := ev.Addr
	if local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ev.Addr.Port())
		if ev.Addr.Addr().Is6() && !ev.Addr.Addr().Is4In6() {
			local = netip.AddrPortFrom(netip.IPv6Loopback(), ev.Addr.Port())
		}
	}
	r.take(ctx, port, local)
}

// take subscribes the pod's port and routes its connections to local.
func (r *incomingRouter) take(ctx context.Context, port uint16, local netip.AddrPort) {
	r.mu.Lock()
	r.routes[port] = local
	r.mu.Unlock()
	if err := r.sess.Subscribe(ctx, port, r.sub); err != nil {
		r.mu.Lock()
		delete(r.routes, port)
		r.mu.Unlock()
		r.p.warn("cannot %s the pod's port %d: %v", r.verb(), port, err)
		return
	}
	switch {
	case r.sub.Mode == wire.ModeMirror:
		r.p.step("mirroring the pod's port %d to %s: the pod's app still answers", port, local)
	case r.sub.Header != "" || r.sub.Path != "":
		r.p.step("stealing the pod's HTTP requests on port %d that match %s: they come to %s, the others go to the pod's app", port, r.sub.describeFilter(), local)
	default:
		r.p.step("stealing the pod's port %d: new connections come to %s", port, local)
	}
}

// watch gives back the pod ports of listeners the program closed, until ctx ends.
func (r *incomingRouter) watch(ctx context.Context) {
	tick := time.NewTicker(listenerCheckPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		routes := make(map[uint16]netip.AddrPort, len(r.routes))
		for port, local := range r.routes {
			routes[port] = local
		}
		r.mu.Unlock()
		for port, local := range routes {
			r.giveBackIfClosed(ctx, port, local)
		}
	}
}

// giveBackIfClosed unsubscribes port when nothing listens on local any more.
func (r *incomingRouter) giveBackIfClosed(ctx context.Context, port uint16, local netip.AddrPort) {
	open, err := layer.Listening(local.Port())
	if err != nil || open {
		return
	}
	r.mu.Lock()
	if r.routes[port] != local {
		r.mu.Unlock()
		return // listened again meanwhile
	}
	delete(r.routes, port)
	r.mu.Unlock()
	if err := r.sess.Unsubscribe(ctx, port); err != nil {
		if ctx.Err() == nil {
			r.p.warn("cannot give the pod's port %d back to its app: %v", port, err)
		}
		return
	}
	r.p.step("the program closed %s: the pod's port %d is its app's again", local, port)
}

// serve accepts the streams the sidecar opens, one per incoming connection, until the session
// ends.
func (r *incomingRouter) serve(ctx context.Context) {
	for {
		stream, err := r.sess.conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go r.handle(ctx, stream)
	}
}

func (r *incomingRouter) handle(ctx context.Context, stream *quic.Stream) {
	msg, err := wire.NewReader(stream).ReadMessage()
	if err != nil {
		abandon(stream)
		return
	}
	in, ok := msg.(wire.Incoming)
	if !ok {
		abandon(stream)
		return
	}
	r.mu.Lock()
	local, ok := r.routes[in.Port]
	r.mu.Unlock()
	var conn *net.TCPConn
	if ok {
		var arrived func()
		conn, arrived, err = r.dialProgram(local, in.Remote)
		if err == nil {
			defer arrived()
		}
	} else {
		err = errors.New("no local listener")
	}
	if err != nil {
		klog.V(1).InfoS("incoming connection refused locally", "port", in.Port, "from", in.Remote, "err", err)
		abandon(stream)
		if ok {
			r.giveBackIfClosed(ctx, in.Port, local)
		}
		return
	}
	klog.V(2).InfoS("incoming connection", "port", in.Port, "from", in.Remote, "to", local, "mode", r.sub.Mode)
	if r.sub.Mode == wire.ModeMirror {
		mirrorStream(stream, conn)
		return
	}
	relayStream(stream, conn)
}

// dialProgram connects to the program's listener at local for the pod's client at remote. Its
// socket is bound first, so that the layer knows the connection's client before the program
// can accept it, and reports that client as the peer; arrived forgets it.
func (r *incomingRouter) dialProgram(local netip.AddrPort, remote string) (conn *net.TCPConn, arrived func(), err error) {
	client, perr := netip.ParseAddrPort(remote)
	arrived = func() {}
	d := net.Dialer{Timeout: 5 * time.Second}
	if perr == nil && r.arrivals != nil {
		d.Control = func(_, _ string, raw syscall.RawConn) error {
			var bound netip.AddrPort
			var err error
			if cerr := raw.Control(func(fd uintptr) { bound, err = bindLoopback(int(fd), local.Addr()) }); cerr != nil {
				return cerr
			}
			switch {
			case err == nil:
				arrived = r.arrivals.ExpectArrival(bound, client)
			case errors.Is(err, errors.ErrUnsupported):
				err = nil
			}
			return err
		}
	}
	c, err := d.Dial("tcp", local.String())
	if err != nil {
		arrived()
		return nil, nil, err
	}
	return c.(*net.TCPConn), arrived, nil
}

// mirrorStream feeds the program the copy of a connection that the pod's app answers; the
// program's answers go nowhere.
func mirrorStream(stream *quic.Stream, conn *net.TCPConn) {
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(done)
	}()
	_, _ = io.Copy(conn, stream)
	_ = conn.CloseWrite()
	stream.CancelWrite(0)
	// Let the program finish its answer, which a close now could cut short, but not wait for
	// one that never closes its side.
	select {
	case <-done:
	case <-time.After(mirrorDrain):
	}
}

// mirrorDrain bounds the wait for the program to end a mirrored connection after its client did.
const mirrorDrain = 10 * time.Second

// relayStream copies both ways between a QUIC stream and a TCP connection, passing each end of
// stream on as a half-close.
func relayStream(stream *quic.Stream, conn *net.TCPConn) {
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, stream)
		_ = conn.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(stream, conn)
	_ = stream.Close()
	<-done
}
