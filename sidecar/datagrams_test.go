package sidecar

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// udpSidecar starts a sidecar whose UDP relays end after idle and connects to it.
func udpSidecar(t *testing.T, idle time.Duration) *quic.Conn {
	t.Helper()
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00"), func(c *Config) { c.UDPIdle = idle })
	return dialSidecar(t, client, port, pin)
}

// readEnd reads datagrams until the stream ends and returns how long that took.
func readEnd(t *testing.T, stream *quic.Stream, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = stream.SetReadDeadline(start.Add(within))
	buf := make([]byte, 100)
	for {
		if _, err := wire.ReadDatagram(stream, buf); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the relay did not end within %s: %v", within, err)
			}
			return time.Since(start)
		}
	}
}

func TestUDPRelayEndsWhenIdle(t *testing.T) {
	const idle = 500 * time.Millisecond
	conn := udpSidecar(t, idle)
	t.Run("a silent peer", func(t *testing.T) {
		sink, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		stream, reply := dialNet(t, conn, "udp", sink.LocalAddr().String())
		if err := reply.Err(); err != nil {
			t.Fatal(err)
		}
		if took := readEnd(t, stream, 10*time.Second); took < idle/2 {
			t.Errorf("the relay ended after %s, before its idle time of %s", took, idle)
		}
	})
	t.Run("datagrams keep it going", func(t *testing.T) {
		stream, reply := dialNet(t, conn, "udp", testnet.UDPEcho(t, ""))
		if err := reply.Err(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		for range 10 { // 10 x idle/5: twice the idle time
			time.Sleep(idle / 5)
			if err := wire.WriteDatagram(stream, []byte("tick")); err != nil {
				t.Fatal(err)
			}
			if n, err := wire.ReadDatagram(stream, buf); err != nil || string(buf[:n]) != "tick" {
				t.Fatalf("echo = %q, %v", buf[:n], err)
			}
		}
		readEnd(t, stream, 10*time.Second)
	})
}

// TestUDPRelayEndsWithTheStream: the client's close ends the relay at once, not at the idle
// time.
func TestUDPRelayEndsWithTheStream(t *testing.T) {
	conn := udpSidecar(t, time.Hour)
	stream, reply := dialNet(t, conn, "udp", testnet.UDPEcho(t, ""))
	if err := reply.Err(); err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteDatagram(stream, make([]byte, wire.MaxDatagram)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, wire.MaxDatagram)
	if n, err := wire.ReadDatagram(stream, buf); err != nil || n != wire.MaxDatagram {
		t.Fatalf("echo of the largest datagram: %d bytes, %v", n, err)
	}
	if err := stream.Close(); err != nil {
		t.Fatal(err)
	}
	readEnd(t, stream, 10*time.Second)
}

func TestUDPDialRefusedByName(t *testing.T) {
	conn := udpSidecar(t, time.Hour)
	_, reply := dialNet(t, conn, "udp", "no-port")
	if reply.Err() == nil {
		t.Fatal("a UDP dial without a port succeeded")
	}
	if _, reply := dialNet(t, conn, "sctp", "127.0.0.1:1"); reply.Err() == nil {
		t.Fatal("a dial of an unserved network succeeded")
	}
}
