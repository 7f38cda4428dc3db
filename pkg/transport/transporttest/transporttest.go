// Package transporttest sets up the two ends of a pinned QUIC link on loopback, for the tests
// of the packages on either end (the sidecar's server, the plugin's client), as net/http's
// httptest does for HTTP.
package transporttest

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
)

// Peers are a server's and a client's identities, each pinning the other's key.
type Peers struct {
	Server, Client transport.Identity
}

// NewPeers makes fresh identities for both ends.
func NewPeers(t testing.TB) Peers {
	t.Helper()
	server, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return Peers{Server: server, Client: client}
}

// ServerTLS is the server's configuration, which accepts only the client's key.
func (p Peers) ServerTLS() *tls.Config { return transport.ServerTLS(p.Server, p.Client.Fingerprint()) }

// ClientTLS is the client's configuration, which accepts only the server's key.
func (p Peers) ClientTLS() *tls.Config { return transport.ClientTLS(p.Client, p.Server.Fingerprint()) }

// ListenLoopback returns a UDP socket on 127.0.0.1, closed when the test ends.
func ListenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// Dial connects to the QUIC server at addr from a fresh UDP socket, within 5 seconds, and
// closes the connection when the test ends.
func Dial(t testing.TB, addr net.Addr, tlsConf *tls.Config) *quic.Conn {
	t.Helper()
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, udp, addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}
