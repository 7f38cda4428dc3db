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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/redirect"
)

// incoming holds the pod's ports that clients subscribed: the nftables table that redirects
// them, the listener where redirected connections arrive, and the client of each port. The
// table exists only while some port is subscribed, so a sidecar at rest leaves the pod's
// network as it found it.
type incoming struct {
	log *slog.Logger

	mu    sync.Mutex
	table *redirect.Table
	ln    *net.TCPListener
	// fromClient says the sidecar may connect to the app from a redirected client's address
	// (redirect.DialFrom); otherwise the app sees the pod's own.
	fromClient bool
	subs       map[uint16]subscription
	wg         sync.WaitGroup
}

// subscription is one client's hold on a pod port.
type subscription struct {
	client *quic.Conn
	mode   string             // wire.ModeSteal or wire.ModeMirror
	filter *httpfilter.Filter // for a steal of only some HTTP requests, or nil
}

func newIncoming(log *slog.Logger) *incoming {
	return &incoming{log: log, subs: map[uint16]subscription{}}
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
	in.mu.Lock()
	defer in.mu.Unlock()
	if sub, ok := in.subs[port]; ok {
		if sub.client == client && sub.mode == mode {
			return nil
		}
		if sub.client == client {
			return fmt.Errorf("port %d is already subscribed by this session to %s: %w", port, sub.mode, syscall.EADDRINUSE)
		}
		return fmt.Errorf("port %d is already subscribed by another session (%s): %w", port, sub.mode, syscall.EADDRINUSE)
	}
	if in.table == nil {
		if err := in.start(ctx); err != nil {
			return err
		}
	}
	to := uint16(in.ln.Addr().(*net.TCPAddr).Port)
	if err := in.table.Redirect(port, to); err != nil {
		in.stopIfIdle() // a table made for this subscription alone goes with it
		return err
	}
	in.subs[port] = subscription{client: client, mode: mode, filter: filter}
	in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode)
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

// start opens the listener and the table, after removing the tables of dead sidecars. Called
// with mu held.
func (in *incoming) start(ctx context.Context) error {
	removeDeadTables(ctx, in.log)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{})
	if err != nil {
		return fmt.Errorf("listen for redirected connections: %w", err)
	}
	// The table is named after the listener's port: a table whose port nobody listens on
	// belongs to a dead sidecar (removeDeadTables).
	table, err := redirect.Open(strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		ln.Close()
		return err
	}
	in.ln, in.table = ln, table
	in.fromClient = true
	if err := errors.Join(table.MarkAnswers(), redirect.DeliverMarkedLocally(-1)); err != nil {
		in.fromClient = false
		in.log.WarnContext(ctx, "the app will see the pod's own address for the connections the sidecar passes on", "err", err)
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.accept(ln)
	}()
	return nil
}

// unsubscribe ends client's subscription of port; the last one removes the table.
func (in *incoming) unsubscribe(client *quic.Conn, port uint16) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.subs[port].client != client {
		return nil
	}
	delete(in.subs, port)
	if err := in.table.Remove(port); err != nil {
		return err
	}
	in.stopIfIdle()
	return nil
}

// dropClient ends every subscription of a client that went away (closed, or silent for the QUIC
// idle timeout).
func (in *incoming) dropClient(client *quic.Conn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for port, sub := range in.subs {
		if sub.client == client {
			delete(in.subs, port)
			if in.table != nil {
				if err := in.table.Remove(port); err != nil {
					in.log.Error("remove redirect", "port", port, "err", err)
				}
			}
		}
	}
	in.stopIfIdle()
}

// stopIfIdle deletes the table and the listener when nothing is subscribed. Called with mu held.
func (in *incoming) stopIfIdle() {
	if len(in.subs) > 0 || in.table == nil {
		return
	}
	if err := in.table.Close(); err != nil {
		in.log.Error("delete redirect table", "err", err)
	}
	in.ln.Close()
	in.table, in.ln = nil, nil
}

// close removes everything, when the sidecar stops.
func (in *incoming) close() {
	in.mu.Lock()
	clear(in.subs)
	in.stopIfIdle()
	in.mu.Unlock()
	in.wg.Wait()
}

func (in *incoming) accept(ln *net.TCPListener) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			in.handle(c)
		}()
	}
}

// handle carries one redirected connection to its port's client, or to the app when the port
// is no longer subscribed (the connection raced an unsubscribe).
func (in *incoming) handle(c *net.TCPConn) {
	defer c.Close()
	dst, err := redirect.OriginalDst(c)
	if err != nil {
		in.log.Error("redirected connection without its destination", "err", err)
		return
	}
	in.mu.Lock()
	sub := in.subs[dst.Port()]
	in.mu.Unlock()
	arrival := wire.Incoming{Port: dst.Port(), Remote: c.RemoteAddr().String()}
	switch {
	case sub.client == nil:
		in.passThrough(c, dst, nil)
	case sub.mode == wire.ModeMirror:
		copies := newMirrorCopy(in.log, sub.client, arrival)
		in.passThrough(c, dst, copies)
		copies.finish()
	case sub.filter != nil:
		in.routeRequests(c, dst, sub, arrival)
	default:
		stream, err := openIncoming(sub.client, arrival)
		if err != nil {
			in.log.Warn("carry an incoming connection to the client", "port", dst.Port(), "err", err)
			return
		}
		relay(stream, c)
	}
}

// routeRequests sends the requests of c that the subscription's filter matches to its client,
// each connection to the client on a stream of its own, and the others to the app at dst.
func (in *incoming) routeRequests(c *net.TCPConn, dst netip.AddrPort, sub subscription, arrival wire.Incoming) {
	dialLocal := func(context.Context) (net.Conn, error) {
		stream, err := openIncoming(sub.client, arrival)
		if err != nil {
			return nil, err
		}
		return streamConn{stream, sub.client}, nil
	}
	dialApp := func(ctx context.Context) (net.Conn, error) { return in.dialApp(ctx, c, dst) }
	// The client's context: requests in flight end with the session that filters them.
	if err := httpfilter.Serve(sub.client.Context(), c, *sub.filter, dialLocal, dialApp); err != nil {
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
func (in *incoming) passThrough(c *net.TCPConn, dst netip.AddrPort, copies *mirrorCopy) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	app, err := in.dialApp(ctx, c, dst)
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

// removeDeadTables deletes the tables of sidecars that no longer run.
func removeDeadTables(ctx context.Context, log *slog.Logger) {
	if _, err := redirectTables(ctx, log, true); err != nil {
		log.WarnContext(ctx, "list redirect tables", "err", err)
	}
}

// redirectTables lists the redirect tables in the pod's network namespace, and deletes those
// of dead sidecars when clean is set: a table's name carries the port its sidecar listens on,
// and a port nobody listens on is a dead sidecar's.
func redirectTables(ctx context.Context, log *slog.Logger, clean bool) ([]wire.RedirectTable, error) {
	names, err := redirect.Tables()
	if err != nil {
		return nil, err
	}
	var tables []wire.RedirectTable
	for _, name := range names {
		ports, err := redirect.TablePorts(name)
		if err != nil {
			log.WarnContext(ctx, "list a redirect table's rules", "table", name, "err", err)
		}
		t := wire.RedirectTable{Name: name, Ports: ports, Live: sidecarListens(name)}
		if clean && !t.Live {
			if err := redirect.DeleteTable(name); err != nil {
				log.WarnContext(ctx, "remove a dead sidecar's redirect table", "table", name, "err", err)
			} else {
				t.Removed = true
				log.InfoContext(ctx, "removed a dead sidecar's redirect table", "table", name, "ports", ports)
			}
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// sidecarListens reports whether the sidecar that owns a table still runs: whether its
// listener port, in the table's name, takes connections. Only a refusal says it is dead.
func sidecarListens(table string) bool {
	port := strings.TrimPrefix(table, redirect.TablePrefix)
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 500*time.Millisecond)
	if err == nil {
		c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}
