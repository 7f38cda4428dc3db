package httpfilter

import (
	"context"
	"fmt"
	"net"
)

// dialFunc opens a new connection to an upstream.
type dialFunc = func(context.Context) (net.Conn, error)

// upstream is where HTTP/1 requests of one client connection go, the local process or the
// app. It is dialled at its first request and its connection is kept for the following ones
// while both the client and the upstream keep their connections alive.
type upstream struct {
	name  string
	dial  dialFunc
	conns *connSet

	*peer // nil until dialled and after dropped
	// idle receives the result of a read started when the connection became idle: bytes
	// or an error before the next request means the upstream closed it or sent something
	// nobody asked for, and that connection cannot carry another request.
	idle chan error
}

// ready makes sure there is a usable connection, dialling a new one if needed.
func (u *upstream) ready(ctx context.Context) error {
	if u.peer != nil {
		select {
		case <-u.idle:
			u.drop() // closed or spoke while idle
		default:
			return nil
		}
	}
	conn, err := u.dial(ctx)
	if err != nil {
		return fmt.Errorf("dial %s: %w", u.name, err)
	}
	if !u.conns.add(conn) {
		return fmt.Errorf("dial %s: %w", u.name, context.Cause(ctx))
	}
	u.peer = newPeer(conn)
	u.idle = nil
	return nil
}

// awaitResponse waits until the connection has response bytes to read. For a reused
// connection it collects the read started by keepIdle, which alone may use u.r meanwhile.
func (u *upstream) awaitResponse() error {
	if u.idle == nil {
		return nil
	}
	err := <-u.idle
	u.idle = nil
	if err != nil {
		return fmt.Errorf("read response from %s: %w", u.name, err)
	}
	return nil
}

// keepIdle keeps the connection for the next request and starts watching it.
func (u *upstream) keepIdle() {
	u.idle = make(chan error, 1)
	go func(p *peer, idle chan<- error) {
		_, err := p.r.Peek(1)
		idle <- err
	}(u.peer, u.idle)
}

// drop closes the connection, if any; the next request dials a new one. A read started by
// keepIdle ends with the connection.
func (u *upstream) drop() {
	if u.peer != nil {
		u.conns.drop(u.conn)
		u.peer = nil
		u.idle = nil
	}
}
