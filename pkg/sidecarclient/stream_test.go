package sidecarclient

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestSessionDialUDP(t *testing.T) {
	dialed := make(chan wire.Dial, 1)
	s := fakeSidecar{
		features: features(false),
		dial: func(stream *quic.Stream, req wire.Dial) {
			dialed <- req
			if wire.WriteMessage(stream, wire.DialReply{}) != nil {
				return
			}
			buf := make([]byte, wire.MaxDatagram)
			for {
				n, err := wire.ReadDatagram(stream, buf)
				if err != nil {
					_ = stream.Close()
					return
				}
				_ = wire.WriteDatagram(stream, append([]byte("echo:"), buf[:n]...))
			}
		},
	}.session(t)
	stream, err := s.Dial(t.Context(), "udp", "10.96.0.10:53", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if req := <-dialed; req.Network != "udp" || req.Address != "10.96.0.10:53" || req.TimeoutMillis != 1000 {
		t.Fatalf("the sidecar got %#v", req)
	}
	buf := make([]byte, 100)
	for _, msg := range []string{"query", ""} {
		if err := wire.WriteDatagram(stream, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if n, err := wire.ReadDatagram(stream, buf); err != nil || string(buf[:n]) != "echo:"+msg {
			t.Fatalf("datagram %q came back as %q, %v", msg, buf[:n], err)
		}
	}
}

// TestSessionDialRefusedEndsTheStream: a refused Dial ends our side of its stream too, so the
// sidecar's side ends even if the sidecar only closes its own.
func TestSessionDialRefusedEndsTheStream(t *testing.T) {
	ended := make(chan error, 1)
	s := fakeSidecar{
		features: features(false),
		dial: func(stream *quic.Stream, _ wire.Dial) {
			_ = wire.WriteMessage(stream, wire.DialReply{Errno: wire.ErrnoOf(syscall.ECONNREFUSED), Reason: "connection refused"})
			_ = stream.Close()
			_, err := io.Copy(io.Discard, stream)
			ended <- err
		},
	}.session(t)
	if _, err := s.Dial(t.Context(), "tcp", "10.0.0.1:80", time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial = %v, want ECONNREFUSED", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the client left its side of a refused stream open")
	}
}
