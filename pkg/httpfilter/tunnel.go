package httpfilter

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// tunnel copies raw bytes both ways between client and upstream after a protocol switch
// (101 Switching Protocols, 2xx to CONNECT) until both directions end. Bytes either side sent
// early, which already sit in our read buffers, go first.
func tunnel(client, upstream *peer) error {
	if err := client.w.Flush(); err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	if err := upstream.w.Flush(); err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	done := make(chan error, 2)
	go func() { done <- pipe(upstream.conn, client) }()
	go func() { done <- pipe(client.conn, upstream) }()
	err := <-done
	if err != nil {
		// Without a clean end of one direction, the other has no reason to go on.
		client.conn.Close()
		upstream.conn.Close()
	}
	return errors.Join(err, <-done)
}

// pipe copies from src to dst until src ends, then passes the end on by closing dst for
// writing. A connection that cannot half-close is closed whole, which ends the tunnel.
func pipe(dst net.Conn, src *peer) error {
	_, err := io.Copy(dst, src.r)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		return nil // closed by the other direction, or by Serve
	}
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	if hc, ok := dst.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		return nil
	}
	dst.Close()
	src.conn.Close()
	return nil
}
