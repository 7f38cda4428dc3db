package sidecarclient

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/transport/transporttest"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// fakeSidecar stands in for the sidecar on loopback QUIC, so that a session can be tested
// against replies no real sidecar sends: it answers the hello with features (or hello's
// answer), hands each later control request to answer (in order, one at a time, as the
// sidecar does), each data stream to dial, and each filesystem stream to fs.
type fakeSidecar struct {
	features []string
	hello    func(wire.Hello) wire.Message
	answer   func(w io.Writer, req wire.Message)
	dial     func(stream *quic.Stream, req wire.Dial)
	fs       func(stream *quic.Stream, r *wire.Reader, req wire.FSRequest)
	// accepted, if set, gets the client's connection.
	accepted func(conn *quic.Conn)
}

// session starts the fake and returns a session connected to it.
func (f fakeSidecar) session(t *testing.T) *Session {
	t.Helper()
	s, err := f.connect(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// connect starts the fake and says hello to it with opts.
func (f fakeSidecar) connect(t *testing.T, opts Options) (*Session, error) {
	t.Helper()
	peers := transporttest.NewPeers(t)
	pc := transporttest.ListenLoopback(t)
	ln, err := transport.Listen(pc, peers.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go f.serve(t.Context(), ln.Listener)

	return connect(t, pc.LocalAddr(), peers.ClientTLS(), opts)
}

// connect makes a QUIC connection to addr over UDP and says hello on it, with opts. The
// session closes when the test ends.
func connect(t testing.TB, addr net.Addr, tlsConf *tls.Config, opts Options) (*Session, error) {
	t.Helper()
	conn := transporttest.Dial(t, addr, tlsConf)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := New(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Close() })
	return s, nil
}

func (f fakeSidecar) serve(ctx context.Context, ln *quic.Listener) {
	conn, err := ln.Accept(ctx)
	if err != nil {
		return
	}
	if f.accepted != nil {
		f.accepted(conn)
	}
	for {
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go func() {
			r := wire.NewReader(stream)
			first, err := r.ReadMessage()
			if err != nil {
				return
			}
			switch m := first.(type) {
			case wire.Hello:
				var reply wire.Message = wire.HelloReply{Version: wire.Version, Features: f.features}
				if f.hello != nil {
					reply = f.hello(m)
				}
				if wire.WriteMessage(stream, reply) != nil {
					return
				}
				for {
					req, err := r.ReadMessage()
					if err != nil {
						return
					}
					f.answer(stream, req)
				}
			case wire.Dial:
				f.dial(stream, m)
			case wire.FSRequest:
				f.fs(stream, r, m)
			}
		}()
	}
}
