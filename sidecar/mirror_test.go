package sidecar

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/transport/transporttest"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// quicPair connects a QUIC client to a QUIC server on loopback and returns the server's end
// (the sidecar's view of its client) and the client's end (the plugin's).
func quicPair(t *testing.T) (sidecarEnd, pluginEnd *quic.Conn) {
	t.Helper()
	peers := transporttest.NewPeers(t)
	ln, err := transport.Listen(transporttest.ListenLoopback(t), peers.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	accepted := make(chan *quic.Conn, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	pluginEnd = transporttest.Dial(t, ln.Addr(), peers.ClientTLS())
	sidecarEnd = <-accepted
	if sidecarEnd == nil {
		t.FailNow()
	}
	// The server's handshake ends when the client's first packet after it arrives: make sure
	// the server may open streams.
	<-sidecarEnd.HandshakeComplete()
	return sidecarEnd, pluginEnd
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) { return testnet.TCPPair(t) }

func TestMirrorPassesThroughAndCopiesWhatTheClientSends(t *testing.T) {
	sidecarEnd, pluginEnd := quicPair(t)
	app := netip.MustParseAddrPort(testnet.TCPEcho(t))
	client, redirected := tcpPair(t)

	payload := make([]byte, 3<<20)
	rand.Read(payload)
	done := make(chan struct{})
	go func() {
		defer close(done)
		copies := newMirrorCopy(slog.New(slog.DiscardHandler), newBudget("mirror copies", copyBudget), sidecarEnd, wire.Incoming{Port: app.Port(), Remote: client.LocalAddr().String()})
		newIncoming(slog.New(slog.DiscardHandler), "").passThrough(t.Context(), redirected, app, copies)
		copies.finish()
		redirected.Close()
	}()

	// The pod's client gets exactly what the app sent back: the echo of its own bytes.
	echoed := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		echoed <- b
	}()
	if _, err := client.Write(payload); err != nil {
		t.Fatal(err)
	}
	client.CloseWrite()

	// The plugin gets a stream announcing the connection, then a copy of what the client sent.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := pluginEnd.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wire.NewReader(stream).ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := msg.(wire.Incoming); !ok || in.Port != app.Port() || in.Remote != client.LocalAddr().String() {
		t.Fatalf("first message %#v, want Incoming for port %d from %s", msg, app.Port(), client.LocalAddr())
	}
	copied, err := io.ReadAll(stream)
	if err != nil {
		t.Fatalf("read the copy: %v", err)
	}
	if sha256.Sum256(copied) != sha256.Sum256(payload) {
		t.Errorf("the copy has %d bytes, not the %d the client sent", len(copied), len(payload))
	}
	if got := <-echoed; !bytes.Equal(got, payload) {
		t.Errorf("the client got %d bytes back, not the %d the app echoed", len(got), len(payload))
	}
	<-done
}

// A client of the sidecar that does not read must not slow the pod's own traffic: the copy is
// dropped past its backlog and the connection goes on.
func TestMirrorDropsACopyThatFallsBehind(t *testing.T) {
	sidecarEnd, _ := quicPair(t) // the plugin end never accepts the stream
	app := netip.MustParseAddrPort(testnet.TCPEcho(t))
	client, redirected := tcpPair(t)

	payload := make([]byte, 2*mirrorBacklog+maxStreamWindowForTest)
	done := make(chan struct{})
	copies := newMirrorCopy(slog.New(slog.DiscardHandler), newBudget("mirror copies", copyBudget), sidecarEnd, wire.Incoming{Port: app.Port(), Remote: "198.18.0.1:1"})
	go func() {
		defer close(done)
		newIncoming(slog.New(slog.DiscardHandler), "").passThrough(t.Context(), redirected, app, copies)
		copies.finish()
		redirected.Close()
	}()
	echoed := make(chan int, 1)
	go func() {
		n, _ := io.Copy(io.Discard, client)
		echoed <- int(n)
	}()
	if _, err := client.Write(payload); err != nil {
		t.Fatal(err)
	}
	client.CloseWrite()
	if n := <-echoed; n != len(payload) {
		t.Errorf("the client got %d bytes back, want %d", n, len(payload))
	}
	<-done
	if !copies.dropped || copies.queued != 0 {
		t.Errorf("the copy was kept (dropped %v, %d bytes queued); want it dropped past its backlog", copies.dropped, copies.queued)
	}
}

// maxStreamWindowForTest is more than QUIC lets a stream send before its reader reads.
const maxStreamWindowForTest = 17 << 20
