package sidecarclient

import (
	"io"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

// BenchmarkLaneEcho moves bytes each way at once through a lane to an echo server, both ends
// in process on loopback: what the lanes cost, without the API server's chain. A QUIC
// stream, for comparison, is BenchmarkLaneEcho's "quic" case.
func BenchmarkLaneEcho(b *testing.B) {
	sc := startSidecar(b, fakeProc(b, b.TempDir(), ""))
	echo := testnet.TCPEcho(b)
	for _, c := range []struct {
		name  string
		lanes bool
	}{{"lane", true}, {"quic", false}} {
		b.Run(c.name, func(b *testing.B) {
			var s *Session
			if c.lanes {
				s, _ = sc.laneSession(b)
			} else {
				s = sc.session(b, Options{})
			}
			stream, err := s.Dial(b.Context(), "tcp", echo, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer stream.Close()
			const size = 32 << 10
			buf := make([]byte, size)
			b.SetBytes(2 * size) // each way
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, stream, int64(b.N)*size)
				done <- err
			}()
			b.ResetTimer()
			for range b.N {
				if _, err := stream.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
