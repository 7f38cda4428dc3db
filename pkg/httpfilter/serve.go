package httpfilter

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// http2Preface starts every HTTP/2 connection with prior knowledge (RFC 9113 section 3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Route sends the requests its Filter matches to the connections Dial opens: one local
// process's share of a port.
type Route struct {
	Filter Filter
	Dial   func(context.Context) (net.Conn, error)
	// HandOver, when set, may take the client connection itself instead, when the next
	// request of an HTTP/1 connection is this route's: it gets the connection and the bytes
	// read from it and not relayed (that request's head first), and says whether it took
	// them. Once it has, ServeRoutes relays nothing more, closes its own descriptor of the
	// connection as always, and returns ErrHandedOver; HandOver must have kept one of its
	// own. Not taken, the request goes to Dial's connection. HTTP/2 connections are never
	// handed over: their requests share the connection.
	HandOver func(client net.Conn, buffered []byte) bool
}

// ErrHandedOver is what ServeRoutes returns once a route's HandOver took the connection.
var ErrHandedOver = errors.New("http filter: connection handed over")

// Serve routes the requests of client until it closes or ctx ends: requests that f matches go
// to the connection dialLocal opens, the others to dialApp's. It is ServeRoutes with one route.
func Serve(ctx context.Context, client net.Conn, f Filter, dialLocal, dialApp func(context.Context) (net.Conn, error)) error {
	return ServeRoutes(ctx, client, []Route{{Filter: f, Dial: dialLocal}}, dialApp)
}

// ServeRoutes routes the requests of client until it closes or ctx ends: each request goes to
// the first route whose filter matches it, or to dialApp's connection when none does. Each
// upstream is dialled at its first request and its connection reused while it stays open.
// ServeRoutes closes client and every connection it dialled before it returns. It returns nil
// if the client closed the connection between requests, and otherwise why it ended, which may
// be a client's fault (a malformed request, already answered with 400 or 431) as well as an
// upstream's. An upstream that cannot be dialled costs the client a 502 response, not its
// connection, if the request had no body.
func ServeRoutes(ctx context.Context, client net.Conn, routes []Route, dialApp func(context.Context) (net.Conn, error)) error {
	conns := &connSet{}
	conns.add(client)
	defer conns.closeAll()
	if len(routes) == 0 {
		return errors.New("http filter: no route")
	}
	for _, r := range routes {
		if err := r.Filter.validate(); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, conns.closeAll)
	defer stop()

	err := serve(ctx, newPeer(client), routes, dialApp, conns)
	if errors.Is(err, ErrHandedOver) {
		return err // whatever ended ctx since, the connection is another's now
	}
	if ctx.Err() != nil {
		return fmt.Errorf("serve http filter: %w", context.Cause(ctx))
	}
	return err
}

func serve(ctx context.Context, client *peer, routes []Route, dialApp dialFunc, conns *connSet) error {
	h2, err := startsWithHTTP2Preface(client.r)
	switch {
	case errors.Is(err, io.EOF) && client.r.Buffered() == 0:
		return nil
	case err != nil:
		return fmt.Errorf("read request: %w", err)
	case h2:
		return serveHTTP2(ctx, client, routes, dialApp, conns)
	}
	p := &http1Proxy{
		client: client,
		app:    &upstream{name: "app", dial: dialApp, conns: conns},
	}
	for i, r := range routes {
		p.routes = append(p.routes, routedUpstream{filter: r.Filter, handOver: r.HandOver, upstream: &upstream{name: localName(i), dial: r.Dial, conns: conns}})
	}
	err = p.serve(ctx)
	conns.closeAll() // ends the request body copies still running
	p.bodies.Wait()
	return err
}

// localName names the upstream of route i in errors: "local" when it is the only one.
func localName(i int) string {
	if i == 0 {
		return "local"
	}
	return fmt.Sprintf("local %d", i+1)
}

// startsWithHTTP2Preface reports whether r starts with the HTTP/2 preface, reading only as
// far as needed to tell: a short HTTP/1 request must not wait for bytes that never come.
func startsWithHTTP2Preface(r *bufio.Reader) (bool, error) {
	for want := 1; ; {
		if _, err := r.Peek(want); err != nil {
			return false, err
		}
		got, _ := r.Peek(min(r.Buffered(), len(http2Preface)))
		if !bytes.HasPrefix([]byte(http2Preface), got) {
			return false, nil
		}
		if len(got) == len(http2Preface) {
			return true, nil
		}
		want = len(got) + 1
	}
}

// Resume is a connection handed over (Route.HandOver) as its taker serves it: its reads return
// the bytes handed over with it first, then the connection's own.
func Resume(conn *net.TCPConn, buffered []byte) net.Conn {
	return &resumedConn{conn: conn, r: io.MultiReader(bytes.NewReader(buffered), conn)}
}

// resumedConn has the methods of a net.Conn and CloseWrite (lingerClose uses it), and no
// others: a ReadFrom or WriteTo of the TCP connection's would go around the bytes handed over.
type resumedConn struct {
	conn *net.TCPConn
	r    io.Reader
}

func (c *resumedConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *resumedConn) Write(b []byte) (int, error)        { return c.conn.Write(b) }
func (c *resumedConn) Close() error                       { return c.conn.Close() }
func (c *resumedConn) CloseWrite() error                  { return c.conn.CloseWrite() }
func (c *resumedConn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *resumedConn) RemoteAddr() net.Addr               { return c.conn.RemoteAddr() }
func (c *resumedConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *resumedConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *resumedConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
