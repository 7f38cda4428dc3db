package transport

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/remocal/kubectl-remocal/internal/ratelog"
)

// addrConn is a connection that only has addresses, and knows whether it was closed.
type addrConn struct {
	net.Conn
	local  net.Addr
	closed atomic.Bool
}

func (c *addrConn) LocalAddr() net.Addr { return c.local }
func (c *addrConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(198, 18, 0, 9), Port: 40000}
}
func (c *addrConn) Close() error { c.closed.Store(true); return nil }

// TestPortMuxFloodOfThePodAddressSparesLoopback: connections to the pod IP that say nothing
// push out the oldest of their kind, never the plugin's on loopback.
func TestPortMuxFloodOfThePodAddressSparesLoopback(t *testing.T) {
	m := &PortMux{log: slog.New(slog.DiscardHandler), refusals: ratelog.New(warnEvery)}
	podIP := &net.TCPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 7700}
	loopback := &addrConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7700}}
	first := &addrConn{local: podIP}
	m.startSorting(first)
	m.startSorting(loopback)
	for range 2 * maxSorting {
		m.startSorting(&addrConn{local: podIP})
	}
	if loopback.closed.Load() {
		t.Error("a flood to the pod IP closed a loopback connection being sorted")
	}
	if !first.closed.Load() {
		t.Error("the oldest connection to the pod IP stayed past the bound")
	}
	if n := len(m.sorting[0]); n != maxSorting {
		t.Errorf("%d connections to the pod IP being sorted, want %d", n, maxSorting)
	}
}
