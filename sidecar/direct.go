package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
)

// directPath serves QUIC on the direct path's UDP socket only while someone may use it. Anyone
// who reaches the pod IP can start a QUIC handshake there, and a client that took the
// port-forward path (auto mode falls back to it when the pod IP is out of reach) never will: so
// while clients are connected over the port-forward path and none directly, QUIC stops serving
// the socket, and it serves again when the last port-forward client has gone.
//
// The socket itself stays open, its datagrams read and dropped: the port stays the sidecar's, so
// no other process in the pod can bind it and answer the next client's direct attempt in its
// place. That attempt would fail on the pinned key instead of falling back to port-forward.
type directPath struct {
	pc  net.PacketConn
	tls *tls.Config
	log *slog.Logger

	mu        sync.Mutex
	direct    int           // clients connected over pc
	forwarded int           // clients connected over the port-forward path
	changed   chan struct{} // has a token when a count changed
}

func newDirectPath(pc net.PacketConn, tlsConf *tls.Config, log *slog.Logger) *directPath {
	return &directPath{pc: pc, tls: tlsConf, log: log, changed: make(chan struct{}, 1)}
}

// wanted says whether QUIC should serve the socket: unless only port-forward clients are connected.
func (d *directPath) wanted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.direct > 0 || d.forwarded == 0
}

// add changes the count of clients on one path by delta.
func (d *directPath) add(direct bool, delta int) {
	d.mu.Lock()
	if direct {
		d.direct += delta
	} else {
		d.forwarded += delta
	}
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// counted returns ln, whose accepted connections count as clients of the direct path, or of the
// port-forward path, while they last.
func (d *directPath) counted(ln acceptor, direct bool) acceptor {
	return countingAcceptor{acceptor: ln, onConn: func(conn *quic.Conn) {
		d.add(direct, 1)
		context.AfterFunc(conn.Context(), func() { d.add(direct, -1) })
	}}
}

// run serves the socket with serve while it is wanted, and drops its datagrams while it is not,
// until ctx is done.
func (d *directPath) run(ctx context.Context, serve func(context.Context, acceptor) error) error {
	for {
		if err := d.serveWhileWanted(ctx, serve); err != nil || ctx.Err() != nil {
			return err
		}
		d.log.InfoContext(ctx, "direct path paused", "reason", "clients only on the port-forward path")
		if err := d.discard(ctx); err != nil || ctx.Err() != nil {
			return err
		}
		d.log.InfoContext(ctx, "direct path serving again")
	}
}

// serveWhileWanted serves QUIC on the socket until it is no longer wanted or ctx is done.
func (d *directPath) serveWhileWanted(ctx context.Context, serve func(context.Context, acceptor) error) error {
	ln, err := transport.Listen(d.pc, d.tls)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var serr error
	served := make(chan struct{})
	go func() {
		defer close(served)
		serr = serve(ctx, d.counted(ln, true))
	}()
	d.until(ctx, false, served)
	cancel()
	// serve closes its connections before it returns, and only then the listener: closing
	// it also ends the connections still in their handshake (a client whose handshake was
	// finishing just now falls back to the port-forward path, as one that found the path
	// paused does), and no connection's closing frame is lost with the socket.
	<-served
	cerr := ln.Close()
	return errors.Join(serr, cerr)
}

// until waits for wanted to become want, ctx to end, or stopped to be closed.
func (d *directPath) until(ctx context.Context, want bool, stopped <-chan struct{}) {
	for d.wanted() != want {
		select {
		case <-d.changed:
		case <-ctx.Done():
			return
		case <-stopped:
			return
		}
	}
}

// discard reads and drops the socket's datagrams until the socket is wanted again or ctx ends.
func (d *directPath) discard(ctx context.Context) error {
	var stopping atomic.Bool
	var rerr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 2048)
		for {
			if _, _, err := d.pc.ReadFrom(buf); err != nil {
				if !stopping.Load() {
					rerr = fmt.Errorf("read the direct path's socket while paused: %w", err)
				}
				return
			}
		}
	}()
	d.until(ctx, true, read)
	stopping.Store(true)
	// Wake the reader; the socket is read again at once, so its deadline is cleared after.
	_ = d.pc.SetReadDeadline(time.Now())
	<-read
	_ = d.pc.SetReadDeadline(time.Time{})
	return rerr
}

// countingAcceptor calls onConn with every connection it accepts.
type countingAcceptor struct {
	acceptor
	onConn func(*quic.Conn)
}

func (a countingAcceptor) Accept(ctx context.Context) (*quic.Conn, error) {
	conn, err := a.acceptor.Accept(ctx)
	if err == nil {
		a.onConn(conn)
	}
	return conn, err
}
