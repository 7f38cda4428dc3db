package sidecar

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A connection made straight to the redirect listener, not redirected, is closed at once: its
// destination is the listener itself, and passing it through connected to the listener again,
// and again, until the sidecar ran out of descriptors. The listener still takes connections
// afterwards, and still shows other sidecars that its own is alive.
func TestDirectConnectionToTheListenerIsRefused(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	// Before the fix this test ran out of descriptors: keep the damage small.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 1024, Max: 1024}); err != nil {
		t.Fatal(err)
	}
	in := newIncoming(slog.New(slog.DiscardHandler), "")
	defer in.close()
	client, _ := quicPair(t)
	if err := in.subscribe(t.Context(), client, "", wire.Subscribe{Port: 8000, Mode: wire.ModeSteal}); err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	listener := in.ln.Addr().(*net.TCPAddr).AddrPort().Port()
	table := in.table.Name()
	in.mu.Unlock()
	before := openFiles(t)
	for i := range 3 {
		c, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(listener)})
		if errors.Is(err, syscall.ECONNRESET) {
			continue // reset before the dial saw it connected: closed at once too
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) || err == nil {
			t.Fatalf("connection %d: read %v; want it closed at once", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if after := openFiles(t); after > before+5 {
		t.Fatalf("%d descriptors open, %d before the direct connections", after, before)
	}
	tables, err := redirectTables(t.Context(), slog.New(slog.DiscardHandler), false)
	if err != nil || len(tables) != 1 || tables[0].Name != table || !tables[0].Live {
		t.Fatalf("redirect tables = %+v, %v; want %s alive", tables, err, table)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// failingListener fails to accept n times, as a listener out of descriptors does, and is then
// closed.
type failingListener struct{ n int }

func (l *failingListener) AcceptTCP() (*net.TCPConn, error) {
	if l.n == 0 {
		return nil, net.ErrClosed
	}
	l.n--
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// The listener outlives a failure to accept: the table still sends the pod's ports to it.
func TestAcceptOutlivesAcceptErrors(t *testing.T) {
	var log bytes.Buffer
	in := newIncoming(slog.New(slog.NewTextHandler(&log, nil)), "")
	ln := &failingListener{n: 4}
	in.accept(t.Context(), ln)
	if ln.n != 0 {
		t.Fatalf("accept gave up with %d failures to come: %s", ln.n, log.String())
	}
}
