package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/quic-go/quic-go"
)

// Listener is a quic.Listener that owns the quic.Transport it runs on.
type Listener struct {
	*quic.Listener
	tr    *quic.Transport
	guard *handshakeGuard
}

// Close closes the listener, its connections and its transport: nothing reads pc afterwards.
func (l *Listener) Close() error {
	return errors.Join(l.Listener.Close(), l.tr.Close())
}

// Listen accepts QUIC connections on pc: a *net.UDPConn for the direct path, a
// [StreamPacketServer] for the stream path.
//
// Handshakes before the client is authenticated are bounded (handshakeLimits): past a few at
// once a new client must first answer a Retry, which spoofed packets cannot, and past the
// limits, in all or from one source address, a new one is refused.
//
// The listener owns the quic.Transport it runs on pc: closing the listener closes its
// connections and stops reading pc. pc itself stays the caller's to close.
func Listen(pc net.PacketConn, tlsConf *tls.Config) (*Listener, error) {
	return listen(pc, tlsConf, defaultHandshakeLimits)
}

func listen(pc net.PacketConn, tlsConf *tls.Config, limits handshakeLimits) (*Listener, error) {
	guard := newHandshakeGuard(limits)
	tr := &quic.Transport{Conn: pc, VerifySourceAddress: guard.verifySource, ConnContext: guard.admit}
	ln, err := tr.Listen(guard.tlsConfig(tlsConf), configFor(pc))
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("listen for quic on %s: %w", pc.LocalAddr(), err)
	}
	return &Listener{Listener: ln, tr: tr, guard: guard}, nil
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
