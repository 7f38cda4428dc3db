package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// paths runs f on both paths, each with a fresh server whose connections are handled by handle
// and a client packet connection that f may dial more than once.
func paths(t *testing.T, f func(t *testing.T, ln *Listener, pc net.PacketConn, addr net.Addr, p peers)) {
	t.Run("udp", func(t *testing.T) {
		p := newPeers(t)
		spc := listenUDP(t)
		qln, err := Listen(spc, p.serverTLS())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { qln.Close() })
		f(t, qln, listenUDP(t), spc.LocalAddr(), p)
	})
	t.Run("stream", func(t *testing.T) {
		p := newPeers(t)
		tcp := listenTCP(t)
		srv := NewStreamPacketServer(tcp, testLogger(t))
		t.Cleanup(func() { srv.Close() })
		qln, err := Listen(srv, p.serverTLS())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { qln.Close() })
		d := &tcpDialer{addr: tcp.Addr().String()}
		cl, err := NewStreamPacketClient(testContext(t, time.Minute), d.dial, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		f(t, qln, cl, cl.Addr(), p)
	})
}

// TestDialAgain: Dial leaves pc usable once its connection ends, so the plugin can reconnect (to a
// restarted sidecar, say) without a new socket or a new port-forward.
func TestDialAgain(t *testing.T) {
	paths(t, func(t *testing.T, ln *Listener, pc net.PacketConn, addr net.Addr, p peers) {
		ctx := testContext(t, 20*time.Second)
		for i := range 3 {
			conn, err := Dial(ctx, pc, addr, p.clientTLS())
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			sconn, err := ln.Accept(ctx)
			if err != nil {
				t.Fatalf("accept %d: %v", i, err)
			}
			if err := conn.SendDatagram([]byte("ping")); err != nil {
				t.Fatalf("dial %d: send datagram: %v", i, err)
			}
			got, err := sconn.ReceiveDatagram(ctx)
			if err != nil || string(got) != "ping" {
				t.Fatalf("dial %d: datagram %q, %v", i, got, err)
			}
			conn.CloseWithError(0, "done")
			<-conn.Context().Done()
		}
	})
}

// TestDialCancelled: a cancelled Dial returns and leaves pc usable.
func TestDialCancelled(t *testing.T) {
	paths(t, func(t *testing.T, ln *Listener, pc net.PacketConn, addr net.Addr, p peers) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Dial(ctx, pc, addr, p.clientTLS()); err == nil {
			t.Fatal("Dial with a cancelled context succeeded")
		}
		conn, err := Dial(testContext(t, 10*time.Second), pc, addr, p.clientTLS())
		if err != nil {
			t.Fatalf("Dial after a cancelled one: %v", err)
		}
		conn.CloseWithError(0, "")
	})
}

func TestConfigFor(t *testing.T) {
	udp := configFor(listenUDP(t))
	if udp.DisablePathMTUDiscovery || udp.InitialPacketSize != 0 {
		t.Errorf("UDP path: DisablePathMTUDiscovery=%v InitialPacketSize=%d; want path MTU discovery", udp.DisablePathMTUDiscovery, udp.InitialPacketSize)
	}
	srv := NewStreamPacketServer(listenTCP(t), nil)
	defer srv.Close()
	stream := configFor(srv)
	if !stream.DisablePathMTUDiscovery || stream.InitialPacketSize != streamPacketSize {
		t.Errorf("stream path: DisablePathMTUDiscovery=%v InitialPacketSize=%d", stream.DisablePathMTUDiscovery, stream.InitialPacketSize)
	}
	for _, c := range []*quic.Config{udp, stream} {
		if !c.EnableDatagrams || c.MaxIdleTimeout != maxIdleTimeout || c.KeepAlivePeriod != keepAlivePeriod {
			t.Errorf("config %+v lacks the shared settings", c)
		}
	}
}
