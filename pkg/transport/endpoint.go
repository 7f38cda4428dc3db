package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/quic-go/quic-go"
)

// Listen accepts QUIC connections on pc: a *net.UDPConn for the direct path, a
// [StreamPacketServer] for the stream path.
//
// The listener owns the quic.Transport it runs on pc: closing the listener closes its connections
// and stops reading pc. pc itself stays the caller's to close. (This is quic.Listen, which is a
// quic.Transport{Conn: pc} that ends with its listener; a bare Transport would keep reading pc after
// the listener closed, until pc was closed.)
func Listen(pc net.PacketConn, tlsConf *tls.Config) (*quic.Listener, error) {
	ln, err := quic.Listen(pc, tlsConf, configFor(pc))
	if err != nil {
		return nil, fmt.Errorf("listen for quic on %s: %w", pc.LocalAddr(), err)
	}
	return ln, nil
}

// Dial opens a QUIC connection to addr over pc: the pod's UDP address over a *net.UDPConn, or
// [StreamPacketClient.Addr] over that client.
//
// Dial runs a quic.Transport of its own on pc for this one connection and closes it when the
// connection ends, so nothing keeps reading pc afterwards: pc can then be closed, or dialed again
// (after a sidecar restart, say). pc stays the caller's to close; it can carry one Dial at a time.
func Dial(ctx context.Context, pc net.PacketConn, addr net.Addr, tlsConf *tls.Config) (*quic.Conn, error) {
	tr := &quic.Transport{Conn: pc}
	conn, err := tr.Dial(ctx, addr, tlsConf, configFor(pc))
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("dial quic %s: %w", addr, err)
	}
	context.AfterFunc(conn.Context(), func() { tr.Close() })
	return conn, nil
}
