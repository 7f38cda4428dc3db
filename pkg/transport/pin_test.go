package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"
)

// TestPinning runs real handshakes over loopback UDP: only the pinned client gets a connection
// the server accepts, and the client accepts only the pinned server.
func TestPinning(t *testing.T) {
	p := newPeers(t)
	stranger, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}

	spc := listenUDP(t)
	qln, err := Listen(spc, p.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer qln.Close()
	accepted := make(chan string, 4)
	go func() {
		for {
			conn, err := qln.Accept(context.Background())
			if err != nil {
				return
			}
			accepted <- fingerprint(conn.ConnectionState().TLS.PeerCertificates[0])
			go func() {
				for {
					str, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go echo(str)
				}
			}()
		}
	}()

	t.Run("pinned client and server", func(t *testing.T) {
		ctx := testContext(t, 10*time.Second)
		conn, err := Dial(ctx, listenUDP(t), spc.LocalAddr(), p.clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		if got := conn.ConnectionState().TLS.NegotiatedProtocol; got != ALPN {
			t.Errorf("ALPN %q, want %q", got, ALPN)
		}
		echoOnce(ctx, t, conn, "hello sidecar")
		select {
		case fp := <-accepted:
			if fp != p.client.Fingerprint() {
				t.Errorf("server accepted %s, want %s", fp, p.client.Fingerprint())
			}
		case <-ctx.Done():
			t.Fatal("server never accepted the pinned client")
		}
	})

	t.Run("client with another key", func(t *testing.T) {
		ctx := testContext(t, 10*time.Second)
		conn, err := Dial(ctx, listenUDP(t), spc.LocalAddr(), ClientTLS(stranger, p.server.Fingerprint()))
		if err == nil {
			// In TLS 1.3 the client finishes its handshake before the server has checked the
			// client's certificate, so the refusal may only show on first use.
			defer conn.CloseWithError(0, "")
			err = tryEcho(ctx, conn, "let me in")
		}
		if err == nil {
			t.Fatal("a client with an unpinned key could use the connection")
		}
		t.Logf("client saw: %v", err)
		select {
		case fp := <-accepted:
			t.Fatalf("server accepted a connection from %s", fp)
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("server with another key", func(t *testing.T) {
		ctx := testContext(t, 10*time.Second)
		_, err := Dial(ctx, listenUDP(t), spc.LocalAddr(), ClientTLS(p.client, stranger.Fingerprint()))
		if !errors.Is(err, ErrPinMismatch) {
			t.Fatalf("Dial to an unpinned server: %v, want ErrPinMismatch", err)
		}
		select {
		case fp := <-accepted:
			t.Fatalf("server accepted a connection from %s", fp)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

func TestVerifyPin(t *testing.T) {
	p := newPeers(t)
	verify := verifyPin("server", p.server.Fingerprint())
	tests := []struct {
		name string
		cs   func() error
		want error
	}{
		{name: "pinned", cs: func() error { return verify(stateWith(p.server)) }},
		{name: "other key", cs: func() error { return verify(stateWith(p.client)) }, want: ErrPinMismatch},
		{name: "no certificate", cs: func() error { return verify(stateWith()) }, want: ErrPinMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cs(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// stateWith is a connection state whose peer presented the certificates of ids.
func stateWith(ids ...Identity) tls.ConnectionState {
	var cs tls.ConnectionState
	for _, id := range ids {
		cs.PeerCertificates = append(cs.PeerCertificates, id.Certificate().Leaf)
	}
	return cs
}
