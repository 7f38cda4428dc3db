package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Subscribe asks the sidecar to send the pod's new connections on port to this session.
func (s *session) Subscribe(ctx context.Context, port uint16, mode string) error {
	if !slices.Contains(s.hello.Features, wire.FeatureSteal) {
		return &userError{msg: "the sidecar cannot redirect incoming traffic: a sidecar of an older remocal version (pass --sidecar-image matching this plugin)"}
	}
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if err := wire.WriteMessage(s.control, wire.Subscribe{Port: port, Mode: mode}); err != nil {
		return fmt.Errorf("subscribe port %d: %w", port, err)
	}
	msg, err := s.reader.ReadMessage()
	if err != nil {
		return fmt.Errorf("subscribe port %d: %w", port, err)
	}
	reply, ok := msg.(wire.SubscribeReply)
	if !ok {
		return fmt.Errorf("subscribe port %d: unexpected reply %T", port, msg)
	}
	return reply.Err()
}

// incomingRouter sends the connections the sidecar carries from the pod to the local program's
// listener on the same port.
type incomingRouter struct {
	choice portChoice
	mu     sync.Mutex
	ports  map[uint16]netip.AddrPort // pod port -> local address
}

func newIncomingRouter(choice portChoice) *incomingRouter {
	return &incomingRouter{choice: choice, ports: map[uint16]netip.AddrPort{}}
}

// steal subscribes the pod's port of a local listener and routes its connections there.
func (r *incomingRouter) steal(ctx context.Context, sess *session, p *progress, ev layer.ListenEvent) {
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
	r.mu.Lock()
	r.ports[port] = local
	r.mu.Unlock()
	if err := sess.Subscribe(ctx, port, wire.ModeSteal); err != nil {
		p.warn("cannot steal the pod's port %d: %v", port, err)
		return
	}
	p.step("stealing the pod's port %d: new connections come to %s", port, local)
}

// serve accepts the streams the sidecar opens, one per incoming connection, until the session
// ends.
func (r *incomingRouter) serve(ctx context.Context, sess *session) {
	for {
		stream, err := sess.conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go r.handle(stream)
	}
}

func (r *incomingRouter) handle(stream *quic.Stream) {
	msg, err := wire.NewReader(stream).ReadMessage()
	if err != nil {
		stream.CancelRead(0)
		stream.CancelWrite(0)
		return
	}
	in, ok := msg.(wire.Incoming)
	if !ok {
		stream.CancelRead(0)
		stream.CancelWrite(0)
		return
	}
	r.mu.Lock()
	local, ok := r.ports[in.Port]
	r.mu.Unlock()
	var conn net.Conn
	if ok {
		conn, err = net.DialTimeout("tcp", local.String(), 5*time.Second)
	} else {
		err = errors.New("no local listener")
	}
	if err != nil {
		klog.V(1).InfoS("incoming connection refused locally", "port", in.Port, "from", in.Remote, "err", err)
		stream.CancelRead(0)
		stream.CancelWrite(0)
		return
	}
	klog.V(2).InfoS("incoming connection", "port", in.Port, "from", in.Remote, "to", local)
	relayStream(stream, conn.(*net.TCPConn))
}

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
