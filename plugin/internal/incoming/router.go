// Package incoming routes the pod's incoming traffic to the program: it subscribes the pod ports
// of the program's listeners in the sidecar (steal or mirror) and connects each connection the
// sidecar passes on to the listener, telling the layer whose connection it is. It gives a port
// back to the pod's app when the program closes its listener.
package incoming

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// describeFilter says which requests the subscription's filter takes.
func describeFilter(sub sidecarclient.Subscription) string {
	var parts []string
	if sub.Header != "" {
		parts = append(parts, "header "+strconv.Quote(sub.Header))
	}
	if sub.Path != "" {
		parts = append(parts, "path "+strconv.Quote(sub.Path))
	}
	if sub.Filter != nil {
		parts = append(parts, "filter "+httpfilter.Format(*sub.Filter))
	}
	return strings.Join(parts, " and ")
}

// listenerCheckPeriod is how often the router looks for listeners the program closed: a closed
// listener gives its pod port back to the pod's app within about this long.
const listenerCheckPeriod = time.Second

// Router subscribes the pod ports of the program's listeners and connects the streams
// the sidecar opens for them, one per connection that reached the pod, to those listeners.
type Router struct {
	sess Link
	p    *progress.Printer
	// podPort is the pod port a listener's local port takes, when it takes one.
	podPort func(local uint16) (uint16, bool)
	sub     sidecarclient.Subscription
	// arrivals tells the layer whose connection each one to the program is: set once the
	// layer's supervisor exists, before the program runs.
	arrivals Arrivals

	mu     sync.Mutex
	routes map[uint16]netip.AddrPort // pod port -> the program's listener
}

// Link is the session's side of the pod's ports: an *attach.Session, or an *attach.Live that
// takes them again through each new sidecar.
type Link interface {
	Subscribe(ctx context.Context, port uint16, sub sidecarclient.Subscription) error
	Unsubscribe(ctx context.Context, port uint16) error
	ServeIncoming(ctx context.Context, handle func(*sidecarclient.Incoming)) error
}

// Arrivals is what learns the client of each connection to the program before the program
// can accept it: the layer's supervisor.
type Arrivals interface {
	ExpectArrival(local, client netip.AddrPort) (done func())
}

// NewRouter returns the router of sess's incoming traffic: podPort says which pod port a
// listener takes (-p, --ports, --ignore-ports), sub how (steal, its filters, or mirror); p
// hears what it takes and gives back.
func NewRouter(sess Link, p *progress.Printer, podPort func(local uint16) (uint16, bool), sub sidecarclient.Subscription) *Router {
	return &Router{sess: sess, p: p, podPort: podPort, sub: sub, routes: map[uint16]netip.AddrPort{}}
}

// SetArrivals has the router tell a of each connection it makes to the program. Call it before
// Serve.
func (r *Router) SetArrivals(a Arrivals) {
	r.arrivals = a
}

// verb says what the subscription does, for the user.
func (r *Router) verb() string {
	if r.sub.Mode == wire.ModeMirror {
		return "mirror"
	}
	return "steal"
}

// Listen subscribes the pod's port of a new listener of the program, as podPort says.
func (r *Router) Listen(ctx context.Context, ev layer.ListenEvent) {
	port, ok := r.podPort(ev.Addr.Port())
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
	r.Take(ctx, port, local)
}

// Take subscribes the pod's port and routes its connections to local.
func (r *Router) Take(ctx context.Context, port uint16, local netip.AddrPort) {
	r.mu.Lock()
	r.routes[port] = local
	r.mu.Unlock()
	if err := r.sess.Subscribe(ctx, port, r.sub); err != nil {
		r.mu.Lock()
		delete(r.routes, port)
		r.mu.Unlock()
		r.p.Warn("cannot %s the pod's port %d: %v", r.verb(), port, attach.ExplainMissingFeature(err))
		return
	}
	switch {
	case r.sub.Mode == wire.ModeMirror:
		r.p.Step("mirroring the pod's port %d to %s: the pod's app still answers", port, local)
	case r.sub.Filtered():
		r.p.Step("stealing the pod's HTTP requests on port %d that match %s: they come to %s, the others go to the pod's app", port, describeFilter(r.sub), local)
	default:
		r.p.Step("stealing the pod's port %d: new connections come to %s", port, local)
	}
}

// Watch gives back the pod ports of listeners the program closed, until ctx ends.
func (r *Router) Watch(ctx context.Context) {
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
func (r *Router) giveBackIfClosed(ctx context.Context, port uint16, local netip.AddrPort) {
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
			r.p.Warn("cannot give the pod's port %d back to its app: %v", port, err)
		}
		return
	}
	r.p.Step("the program closed %s: the pod's port %d is its app's again", local, port)
}

// Serve connects each connection the sidecar passes on to the program, until the session ends.
func (r *Router) Serve(ctx context.Context) {
	_ = r.sess.ServeIncoming(ctx, func(in *sidecarclient.Incoming) { r.handle(ctx, in) })
}

func (r *Router) handle(ctx context.Context, in *sidecarclient.Incoming) {
	r.mu.Lock()
	local, ok := r.routes[in.Port]
	r.mu.Unlock()
	var conn *net.TCPConn
	var err error
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
		in.Abandon()
		if ok {
			r.giveBackIfClosed(ctx, in.Port, local)
		}
		return
	}
	klog.V(2).InfoS("incoming connection", "port", in.Port, "from", in.Remote, "to", local, "mode", r.sub.Mode)
	if r.sub.Mode == wire.ModeMirror {
		mirrorStream(in.Stream, conn)
		return
	}
	Relay(in.Stream, conn)
}

// dialProgram connects to the program's listener at local for the pod's client at remote. Its
// socket is bound first, so that the layer knows the connection's client before the program
// can accept it, and reports that client as the peer; arrived forgets it.
func (r *Router) dialProgram(local netip.AddrPort, remote string) (conn *net.TCPConn, arrived func(), err error) {
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
func mirrorStream(stream *sidecarclient.Stream, conn *net.TCPConn) {
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(done)
	}()
	_, _ = io.Copy(conn, stream)
	_ = conn.CloseWrite()
	stream.Abandon()
	// Let the program finish its answer, which a close now could cut short, but not wait for
	// one that never closes its side.
	select {
	case <-done:
	case <-time.After(mirrorDrain):
	}
}

// mirrorDrain bounds the wait for the program to end a mirrored connection after its client did.
const mirrorDrain = 10 * time.Second

// Relay copies both ways between a stream and a TCP connection, passing each end of stream on
// as a half-close, and a reset or loss of the stream on as a reset. It closes both when done:
// a lane lives, and holds its connection to the sidecar, until it is closed.
func Relay(stream *sidecarclient.Stream, conn *net.TCPConn) {
	defer conn.Close()
	defer stream.Close()
	done := make(chan struct{})
	go func() {
		if _, err := io.Copy(conn, stream); err != nil {
			// The connection was reset or lost on the pod's side: so is the program's.
			_ = conn.SetLinger(0)
			conn.Close()
		} else {
			_ = conn.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(stream, conn)
	_ = stream.CloseWrite()
	<-done
}
