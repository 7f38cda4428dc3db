package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/redirect"
)

// The data path of a redirected connection: from the listener to the client that stole its
// port, to the clients whose filters match its requests, or through to the app (with a copy
// for a mirror).

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
		in.routeRequests(ctx, c, c.RemoteAddr().(*net.TCPAddr).AddrPort(), dst, subs, changed, arrival)
	default:
		in.carry(sub, c, arrival)
	}
}

// routeRequests sends each request of c, a connection from the client at from, to the client
// of the first subscription whose filter matches it, each connection to a client on a stream
// or lane of its own, and the others to the app at dst. A connection whose next request is
// another sidecar's share is handed over to that sidecar (handover.go), when c is the
// client's TCP connection itself.
func (in *incoming) routeRequests(ctx context.Context, c net.Conn, from, dst netip.AddrPort, subs []subscription, changed <-chan struct{}, arrival wire.Incoming) {
	// The connection ends with any session that filters it, and when the port's sessions
	// change (one joins, or gives the port up): the client connects again, and its next
	// connection is routed among the sessions there are then.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cancelWhenClosed(ctx, changed, cancel)
	// The hand-over's socket once a member's sidecar took c, and what forgets its routes back.
	var handed *net.UnixConn
	var forgetHandOver func()
	routes := make([]httpfilter.Route, len(subs))
	for i, sub := range subs {
		routes[i] = httpfilter.Route{Filter: *sub.filter, Dial: func(context.Context) (net.Conn, error) {
			return in.dialClient(sub, arrival)
		}}
		if sub.member == nil {
			stop := context.AfterFunc(sub.client.Context(), cancel)
			defer stop()
			continue
		}
		go cancelWhenClosed(ctx, sub.member.gone, cancel)
		routes[i].Dial = func(ctx context.Context) (net.Conn, error) { return deliverTo(ctx, sub.member, arrival) }
		routes[i].HandOver = func(client net.Conn, buffered []byte) bool {
			tcp, ok := client.(*net.TCPConn)
			if !ok {
				return false // a connection routed back to us: it was handed over once
			}
			route, forget, err := in.recordHandOver(handedOver{from: from, dst: dst, arrival: arrival})
			if err != nil {
				return false
			}
			before := make([]wire.Subscribe, i)
			for j, s := range subs[:i] {
				before[j] = s.asked
			}
			ask := wire.PeerHandOver{Token: sub.member.token, Incoming: arrival, Route: route, Before: before}
			uc, taken, err := in.handOver(ctx, sub.member, tcp, buffered, ask)
			if err != nil {
				in.log.Debug("hand-over", "port", dst.Port(), "sidecar", sub.member.sidecar, "taken", taken, "err", err)
			}
			if uc == nil {
				forget()
			} else {
				handed, forgetHandOver = uc, forget
			}
			return taken
		}
	}
	dialApp := func(ctx context.Context) (net.Conn, error) { return in.dialApp(ctx, from, dst) }
	err := httpfilter.ServeRoutes(ctx, c, routes, dialApp)
	if handed != nil {
		in.log.Debug("connection handed over", "port", dst.Port(), "from", arrival.Remote)
		servedElsewhere(ctx, handed)
		forgetHandOver()
		return
	}
	if err != nil {
		in.log.Debug("filtered connection ended", "port", dst.Port(), "from", arrival.Remote, "err", err)
	}
}

// dialClient opens what carries a connection that arrived to sub's client, one of ours: one of
// its lanes, or a stream.
func (in *incoming) dialClient(sub subscription, arrival wire.Incoming) (net.Conn, error) {
	if in.lanes != nil {
		if l, ok := in.lanes(sub.client, arrival); ok {
			return l, nil
		}
	}
	stream, err := openIncoming(sub.client, arrival)
	if err != nil {
		return nil, err
	}
	return streamConn{stream, sub.client}, nil
}

// cancelWhenClosed calls cancel once ch is closed, unless ctx ends first.
func cancelWhenClosed(ctx context.Context, ch <-chan struct{}, cancel context.CancelFunc) {
	select {
	case <-ch:
		cancel()
	case <-ctx.Done():
	}
}

// streamConn is a stream to a client as the net.Conn that httpfilter dials.
type streamConn struct {
	*quic.Stream
	conn *quic.Conn
}

func (s streamConn) LocalAddr() net.Addr { return s.conn.LocalAddr() }

func (s streamConn) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// CloseWrite ends our direction: a QUIC stream's Close is a half-close.
func (s streamConn) CloseWrite() error { return s.Stream.Close() }

// Close ends both directions.
func (s streamConn) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
}

// dialApp connects to the app at dst for a redirected connection of the client at from: from
// that address when the pod allows it, so that the app sees who called it. Our own connection
// is locally generated, so it never passes the prerouting hook that redirected the client's:
// no loop.
func (in *incoming) dialApp(ctx context.Context, from, dst netip.AddrPort) (*net.TCPConn, error) {
	in.mu.Lock()
	fromClient := in.fromClient
	in.mu.Unlock()
	if fromClient {
		conn, err := redirect.DialFrom(ctx, from, dst)
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
	app, err := in.dialApp(dialing, c.RemoteAddr().(*net.TCPAddr).AddrPort(), dst)
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
