package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/capture"
	"github.com/remocal/kubectl-remocal/sidecar/redirect"
)

// incoming holds the pod's ports that clients subscribed: the nftables table that redirects
// them, the listener where redirected connections arrive, and the client of each port. The
// table exists only while some port is subscribed, so a sidecar at rest leaves the pod's
// network as it found it.
type incoming struct {
	log *slog.Logger
	// holder names this sidecar in its table's rules (its container name): another sidecar of
	// the pod that finds a port taken tells its user whose it is. Empty: the table's name.
	holder string

	mu    sync.Mutex
	table *redirect.Table
	ln    *net.TCPListener
	// stopRenewing ends the renewal of the table's lease, which keeps its redirects in force.
	stopRenewing context.CancelFunc
	// fromClient says the sidecar may connect to the app from a redirected client's address
	// (redirect.DialFrom); otherwise the app sees the pod's own.
	fromClient bool
	// subs holds each subscribed port's subscriptions: one that takes the whole port (a
	// steal or a mirror), or one or more filtered steals, each of another client, which
	// share the port's HTTP requests (the first whose filter matches takes a request).
	subs map[uint16][]subscription
	// changed has, for each subscribed port, a channel closed when its subscriptions change:
	// a filtered connection routes by the subscriptions it started with, and ends then, so
	// that its client's next connection is routed among the current ones.
	changed map[uint16]chan struct{}
	// captures holds the one packet socket of every port mirrored by capture.
	captures *capture.Socket
	// copies bounds what the mirror copies of every port hold in their queues.
	copies *budget
	wg     sync.WaitGroup
}

// subscription is one client's hold on a pod port.
type subscription struct {
	client *quic.Conn
	mode   string             // wire.ModeSteal or wire.ModeMirror
	filter *httpfilter.Filter // for a steal of only some HTTP requests, or nil
	// header and path are the filter as the client wrote it, to tell two filters apart.
	header, path string
	// capture copies the port's connections for a mirror without redirecting them; nil for
	// a redirected port.
	capture *capture.Capture
}

func (s subscription) describe() string {
	if s.filter == nil {
		return s.mode
	}
	return fmt.Sprintf("%s of the HTTP requests matching header %q path %q", s.mode, s.header, s.path)
}

// newIncoming's holder is the sidecar's name in its table's rules.
func newIncoming(log *slog.Logger, holder string) *incoming {
	return &incoming{log: log, holder: holder, subs: map[uint16][]subscription{}, changed: map[uint16]chan struct{}{}, captures: capture.NewSocket(log), copies: newBudget("mirror copies", copyBudget)}
}

// subscribe sends the pod's new connections on port to client: all of them (steal), or a copy
// of each (mirror).
func (in *incoming) subscribe(ctx context.Context, client *quic.Conn, req wire.Subscribe) error {
	port, mode := req.Port, req.Mode
	if mode != wire.ModeSteal && mode != wire.ModeMirror {
		return fmt.Errorf("subscription mode %q: %w", mode, syscall.EOPNOTSUPP)
	}
	filter, err := requestFilter(req)
	if err != nil {
		return err
	}
	want := subscription{client: client, mode: mode, filter: filter, header: req.Header, path: req.Path}
	in.mu.Lock()
	defer in.mu.Unlock()
	if subs := in.subs[port]; len(subs) > 0 {
		if err := sharable(port, subs, want); err != nil {
			return err
		}
		if slices.ContainsFunc(subs, func(s subscription) bool { return s.client == client }) {
			return nil // the same subscription again
		}
		in.subs[port] = append(subs, want) // the port is redirected already
		in.change(port)
		in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode, "header", req.Header, "path", req.Path, "sharedBy", len(subs)+1)
		return nil
	}
	if mode == wire.ModeMirror {
		c, err := in.captures.Listen(port, func(f capture.Flow) io.WriteCloser {
			return newMirrorCopy(in.log, in.copies, client, wire.Incoming{Port: port, Remote: f.Client.String()})
		})
		if err == nil {
			want.capture = c
			in.subs[port] = []subscription{want}
			in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode, "by", "packet capture")
			return nil
		}
		in.log.WarnContext(ctx, "cannot capture the port's packets: mirroring by redirect, through the sidecar", "port", port, "err", err)
	}
	if in.table == nil {
		if err := in.start(ctx); err != nil {
			return err
		}
	}
	if err := in.redirect(ctx, port); err != nil {
		in.stopIfIdle() // a table made for this subscription alone goes with it
		return err
	}
	in.subs[port] = []subscription{want}
	in.change(port)
	in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode, "header", req.Header, "path", req.Path)
	return nil
}

// list reports every subscription, ordered by port and then by the order they were taken;
// Mine marks those of client.
func (in *incoming) list(client *quic.Conn) []wire.SubscriptionInfo {
	in.mu.Lock()
	defer in.mu.Unlock()
	ports := make([]uint16, 0, len(in.subs))
	for port := range in.subs {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	var list []wire.SubscriptionInfo
	for _, port := range ports {
		for _, s := range in.subs[port] {
			list = append(list, wire.SubscriptionInfo{
				Port:    port,
				Mode:    s.mode,
				Header:  s.header,
				Path:    s.path,
				Client:  s.client.RemoteAddr().String(),
				Mine:    s.client == client,
				Capture: s.capture != nil,
			})
		}
	}
	return list
}

// sharable tells whether want can join the subscriptions subs of port: only filtered steals
// of different clients with different filters share a port, since each whole-port
// subscription, and each request, has one taker.
func sharable(port uint16, subs []subscription, want subscription) error {
	for _, s := range subs {
		switch {
		case s.client == want.client && (s.mode != want.mode || s.header != want.header || s.path != want.path):
			return fmt.Errorf("port %d is already subscribed by this session to %s: %w", port, s.describe(), syscall.EADDRINUSE)
		case s.client == want.client:
		case s.filter == nil || want.filter == nil:
			return fmt.Errorf("port %d is already subscribed by another session (%s): %w", port, s.describe(), syscall.EADDRINUSE)
		case s.header == want.header && s.path == want.path:
			return fmt.Errorf("port %d is already subscribed by another session for the same requests (%s): %w", port, s.describe(), syscall.EADDRINUSE)
		}
	}
	return nil
}

// requestFilter is the HTTP filter a subscription asks for, or nil for a whole port.
func requestFilter(req wire.Subscribe) (*httpfilter.Filter, error) {
	if req.Header == "" && req.Path == "" {
		return nil, nil
	}
	if req.Mode != wire.ModeSteal {
		return nil, fmt.Errorf("HTTP filters choose what to steal, not what to %s: %w", req.Mode, syscall.EINVAL)
	}
	var f httpfilter.Filter
	var err error
	if req.Header != "" {
		if f.Header, f.HeaderValue, err = httpfilter.ParseHeader(req.Header); err != nil {
			return nil, fmt.Errorf("%w: %w", err, syscall.EINVAL)
		}
	}
	if req.Path != "" {
		if f.Path, err = regexp.Compile(req.Path); err != nil {
			return nil, fmt.Errorf("path filter %q: %w: %w", req.Path, err, syscall.EINVAL)
		}
	}
	return &f, nil
}

// start opens the listener and the table, after removing the tables of dead sidecars, and
// renews the table's lease until the table goes. Called with mu held.
func (in *incoming) start(ctx context.Context) error {
	removeDeadTables(ctx, in.log)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{})
	if err != nil {
		return fmt.Errorf("listen for redirected connections: %w", err)
	}
	// The table is named after the listener's port: a table whose port nobody listens on
	// belongs to a dead sidecar (removeDeadTables).
	table, err := redirect.Open(strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), in.holder)
	if err != nil {
		ln.Close()
		return err
	}
	in.ln, in.table = ln, table
	renewing, stop := context.WithCancel(context.WithoutCancel(ctx))
	in.stopRenewing = stop
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.renew(renewing, table)
	}()
	in.fromClient = true
	if err := errors.Join(table.MarkAnswers(), redirect.DeliverMarkedLocally(-1)); err != nil {
		in.fromClient = false
		in.log.WarnContext(ctx, "the app will see the pod's own address for the connections the sidecar passes on", "err", err)
	}
	// The redirected connections outlive the subscription that opened the listener: each ends
	// with its client or its app, not with that request.
	serving := context.WithoutCancel(ctx)
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.accept(serving, ln)
	}()
	return nil
}

// unsubscribe ends client's subscription of port; the last one removes the table.
func (in *incoming) unsubscribe(client *quic.Conn, port uint16) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.drop(client, port)
}

// dropClient ends every subscription of a client that went away (closed, or silent for the QUIC
// idle timeout).
func (in *incoming) dropClient(client *quic.Conn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for port := range in.subs {
		if err := in.drop(client, port); err != nil {
			in.log.Error("remove redirect", "port", port, "err", err)
		}
	}
}

// drop ends client's subscription of port, and the port's redirect with its last
// subscription. Called with mu held.
func (in *incoming) drop(client *quic.Conn, port uint16) error {
	subs := in.subs[port]
	kept := slices.DeleteFunc(slices.Clone(subs), func(s subscription) bool { return s.client == client })
	switch {
	case len(kept) == len(subs):
		return nil
	case len(kept) > 0:
		in.subs[port] = kept
		in.change(port)
		return nil
	}
	delete(in.subs, port)
	in.change(port)
	var err error
	switch {
	case subs[0].capture != nil:
		err = subs[0].capture.Close()
	case in.table != nil:
		err = in.table.Remove(port)
	}
	in.stopIfIdle()
	return err
}

// change tells the connections routed by port's subscriptions that these changed. Called with
// mu held.
func (in *incoming) change(port uint16) {
	if ch := in.changed[port]; ch != nil {
		close(ch)
	}
	if _, ok := in.subs[port]; ok {
		in.changed[port] = make(chan struct{})
	} else {
		delete(in.changed, port)
	}
}

// stopIfIdle deletes the table and the listener when no port is redirected. Called with mu
// held.
func (in *incoming) stopIfIdle() {
	if in.table == nil {
		return
	}
	for _, subs := range in.subs {
		if subs[0].capture == nil {
			return
		}
	}
	in.stopRenewing()
	if err := in.table.Close(); err != nil {
		in.log.Error("delete redirect table", "err", err)
	}
	in.ln.Close()
	in.table, in.ln, in.stopRenewing = nil, nil, nil
}

// close removes everything, when the sidecar stops.
func (in *incoming) close() {
	in.mu.Lock()
	for _, subs := range in.subs {
		if subs[0].capture != nil {
			_ = subs[0].capture.Close()
		}
	}
	clear(in.subs)
	for _, ch := range in.changed {
		close(ch)
	}
	clear(in.changed)
	in.stopIfIdle()
	in.mu.Unlock()
	in.wg.Wait()
}

// accept serves the listener's connections until it is closed. The table sends the pod's
// ports here until then, so the listener outlives a failure to accept (out of descriptors or
// memory, a connection aborted before it was taken): it waits, longer each time in a row, and
// tries again.
func (in *incoming) accept(ctx context.Context, ln interface{ AcceptTCP() (*net.TCPConn, error) }) {
	var wait time.Duration
	for {
		c, err := ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			in.log.Warn("accept a redirected connection", "err", err, "retryIn", wait)
			time.Sleep(wait)
			continue
		}
		wait = 0
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			in.handle(ctx, c)
		}()
	}
}

// handle carries one redirected connection to its port's client, or to the app when the port
// is no longer subscribed (the connection raced an unsubscribe).
func (in *incoming) handle(ctx context.Context, c *net.TCPConn) {
	defer c.Close()
	dst, err := redirect.OriginalDst(c)
	if err != nil {
		in.log.Error("redirected connection without its destination", "err", err)
		return
	}
	if dst.Port() == uint16(c.LocalAddr().(*net.TCPAddr).Port) {
		// Not redirected: made to the listener itself, which listens on every address. Its
		// destination is the listener, and passing it through would connect to the listener
		// again, and so on until the sidecar runs out of descriptors.
		in.log.Debug("refused a connection made straight to the redirect listener", "from", c.RemoteAddr())
		_ = c.SetLinger(0)
		return
	}
	in.mu.Lock()
	subs := slices.Clone(in.subs[dst.Port()])
	changed := in.changed[dst.Port()]
	in.mu.Unlock()
	arrival := wire.Incoming{Port: dst.Port(), Remote: c.RemoteAddr().String()}
	if len(subs) == 0 {
		in.passThrough(ctx, c, dst, nil)
		return
	}
	switch sub := subs[0]; {
	case sub.mode == wire.ModeMirror:
		copies := newMirrorCopy(in.log, in.copies, sub.client, arrival)
		in.passThrough(ctx, c, dst, copies)
		copies.finish()
	case sub.filter != nil:
		in.routeRequests(ctx, c, dst, subs, changed, arrival)
	default:
		stream, err := openIncoming(sub.client, arrival)
		if err != nil {
			in.log.Warn("carry an incoming connection to the client", "port", dst.Port(), "err", err)
			return
		}
		relay(stream, c)
	}
}

// routeRequests sends each request of c to the client of the first subscription whose filter
// matches it, each connection to a client on a stream of its own, and the others to the app
// at dst.
func (in *incoming) routeRequests(ctx context.Context, c *net.TCPConn, dst netip.AddrPort, subs []subscription, changed <-chan struct{}, arrival wire.Incoming) {
	// The connection ends with any session that filters it, and when the port's sessions
	// change (one joins, or gives the port up): the client connects again, and its next
	// connection is routed among the sessions there are then.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	routes := make([]httpfilter.Route, len(subs))
	for i, sub := range subs {
		stop := context.AfterFunc(sub.client.Context(), cancel)
		defer stop()
		routes[i] = httpfilter.Route{Filter: *sub.filter, Dial: func(context.Context) (net.Conn, error) {
			stream, err := openIncoming(sub.client, arrival)
			if err != nil {
				return nil, err
			}
			return streamConn{stream, sub.client}, nil
		}}
	}
	dialApp := func(ctx context.Context) (net.Conn, error) { return in.dialApp(ctx, c, dst) }
	if err := httpfilter.ServeRoutes(ctx, c, routes, dialApp); err != nil {
		in.log.Debug("filtered connection ended", "port", dst.Port(), "from", arrival.Remote, "err", err)
	}
}

// streamConn is a stream to a client as the net.Conn that httpfilter dials.
type streamConn struct {
	*quic.Stream
	conn *quic.Conn
}

func (s streamConn) LocalAddr() net.Addr  { return s.conn.LocalAddr() }
func (s streamConn) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// CloseWrite ends our direction: a QUIC stream's Close is a half-close.
func (s streamConn) CloseWrite() error { return s.Stream.Close() }

// Close ends both directions.
func (s streamConn) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
}

// dialApp connects to the app at dst for the redirected connection c: from c's client's
// address when the pod allows it, so that the app sees who called it. Our own connection is
// locally generated, so it never passes the prerouting hook that redirected c: no loop.
func (in *incoming) dialApp(ctx context.Context, c *net.TCPConn, dst netip.AddrPort) (*net.TCPConn, error) {
	in.mu.Lock()
	fromClient := in.fromClient
	in.mu.Unlock()
	if fromClient {
		conn, err := redirect.DialFrom(ctx, c.RemoteAddr().(*net.TCPAddr).AddrPort(), dst)
		if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
			return conn, err
		}
		// Whatever else failed would fail again and might cost each connection a timeout:
		// the app sees the pod's address from now on.
		in.mu.Lock()
		in.fromClient = false
		in.mu.Unlock()
		in.log.Warn("cannot connect to the app from the client's address; the app will see the pod's own", "err", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		return nil, err
	}
	return conn.(*net.TCPConn), nil
}

// openIncoming opens the stream that carries a connection that arrived to client, and
// announces it.
func openIncoming(client *quic.Conn, arrival wire.Incoming) (*quic.Stream, error) {
	ctx, cancel := context.WithTimeout(client.Context(), 10*time.Second)
	defer cancel()
	stream, err := client.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a stream: %w", err)
	}
	if err := wire.WriteMessage(stream, arrival); err != nil {
		stream.CancelRead(0)
		stream.CancelWrite(0)
		return nil, err
	}
	return stream, nil
}

// passThrough connects c to the app it was going to, at dst, and copies both ways; what c
// sends also goes to copies when there are any. When the app refuses, c is reset, as the app's
// port would have reset it.
func (in *incoming) passThrough(ctx context.Context, c *net.TCPConn, dst netip.AddrPort, copies *mirrorCopy) {
	dialing, cancel := context.WithTimeout(ctx, 5*time.Second)
	app, err := in.dialApp(dialing, c, dst)
	cancel()
	if err != nil {
		_ = c.SetLinger(0)
		return
	}
	defer app.Close()
	if copies == nil {
		pipe(c, app)
		return
	}
	done := make(chan struct{})
	go func() {
		_, _ = c.ReadFrom(app)
		_ = c.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(io.MultiWriter(app, copies), c) // the app first: the copy never delays it
	_ = app.CloseWrite()
	<-done
}

// pipe copies both ways between two TCP connections with half-closes.
func pipe(a, b *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		_, _ = b.ReadFrom(a)
		_ = b.CloseWrite()
		close(done)
	}()
	_, _ = a.ReadFrom(b)
	_ = a.CloseWrite()
	<-done
}
