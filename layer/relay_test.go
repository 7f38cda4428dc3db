package layer

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// close ends the relays still running, whose pod side might never end by itself (a lane whose
// sidecar went silent): the supervisor's Close waits for them.
func TestRelayCloseEndsActiveRelays(t *testing.T) {
	r, err := newTCPRelay(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	program, local := tcpPairForTest(t)
	defer program.Close()
	podEnd, silent := tcpPairForTest(t) // the pod's side: silent never writes or closes
	defer silent.Close()
	done := make(chan struct{})
	r.start(local, podEnd, func() { close(done) })
	r.close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a relay whose pod side never ends outlived close")
	}
	r.wg.Wait()
}

func tcpPairForTest(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}
