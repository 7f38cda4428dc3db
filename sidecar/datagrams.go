package sidecar

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// defaultUDPIdle ends a UDP relay after this long without a datagram either way: the client
// cannot tell us that the program closed its socket.
const defaultUDPIdle = 2 * time.Minute

func (s *server) udpIdle() time.Duration {
	if s.cfg.UDPIdle > 0 {
		return s.cfg.UDPIdle
	}
	return defaultUDPIdle
}

// relayDatagrams carries datagrams between stream (framed with wire.WriteDatagram) and a
// connected UDP socket, until the stream ends, either side fails, or idle passes without a
// datagram.
func relayDatagrams(stream *quic.Stream, conn *net.UDPConn, idle time.Duration) {
	defer conn.Close()
	activity := make(chan struct{}, 1)
	touch := func() {
		select {
		case activity <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, wire.MaxDatagram)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return
				}
				// A refused datagram (ICMP port unreachable) is not the end of a UDP flow.
				if errors.Is(err, syscall.ECONNREFUSED) {
					continue
				}
				return
			}
			touch()
			if err := wire.WriteDatagram(stream, buf[:n]); err != nil {
				return
			}
		}
	}()
	go func() {
		buf := make([]byte, wire.MaxDatagram)
		for {
			n, err := wire.ReadDatagram(stream, buf)
			if err != nil {
				_ = conn.SetReadDeadline(time.Now())
				return
			}
			touch()
			_, _ = conn.Write(buf[:n])
		}
	}()
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case <-done:
			stream.CancelRead(0)
			_ = stream.Close()
			return
		case <-activity:
			timer.Reset(idle)
		case <-timer.C:
			_ = conn.SetReadDeadline(time.Now())
		}
	}
}
