package sidecar

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
)

// TestDirectPathPausesForPortForwardClients runs the sidecar and watches its direct path (UDP)
// as clients come and go on the port-forward path (the loopback stream port): it stops answering
// while the only clients are port-forward ones, answers again when they have gone, and a
// direct client keeps it answering whoever joins.
func TestDirectPathPausesForPortForwardClients(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00"))
	tlsConf := transport.ClientTLS(client, pin)

	// answers is the plugin's probe of the direct path, only shorter than its 1.5 s (and long
	// enough for a handshake on a loaded machine: 300 ms was not, once in a while).
	answers := func() bool {
		udp, err := net.ListenUDP("udp", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		conn, err := transport.Dial(ctx, udp, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, tlsConf)
		if err != nil {
			return false
		}
		conn.CloseWithError(0, "")
		return true
	}
	if !answers() {
		t.Fatal("the direct path does not answer before any client")
	}

	forwarded := dialForwarded(t, port, tlsConf)
	if !waitUntil(5*time.Second, func() bool { return !answers() }) {
		t.Fatal("the direct path still answers while the only client is on the port-forward path")
	}
	// Paused, the port stays the sidecar's: nobody else in the pod can answer on it.
	if pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
		pc.Close()
		t.Fatal("another socket could bind the paused direct path's port")
	}
	forwarded.CloseWithError(0, "")
	if !waitUntil(5*time.Second, answers) {
		t.Fatal("the direct path does not answer again after the port-forward client left")
	}

	direct := dialSidecar(t, client, port, pin)
	dialForwarded(t, port, tlsConf)
	for range 5 {
		if !answers() {
			t.Fatal("the direct path stopped answering with a direct client connected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := direct.Context().Err(); err != nil {
		t.Errorf("the direct client's connection ended: %v", context.Cause(direct.Context()))
	}
}

// dialForwarded connects a client over the sidecar's port-forward path, as the plugin does
// through a port-forward, but straight to the loopback port.
func dialForwarded(t *testing.T, port int, tlsConf *tls.Config) *quic.Conn {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	pc, err := transport.NewStreamPacketClient(t.Context(), dial, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, pc, pc.Addr(), tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
