package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/transport/transporttest"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// startSidecar runs Run on loopback for a client identity and returns the port and the
// sidecar's pin, read from its first log line as the plugin does. configure, if any, adjusts
// the configuration first.
func startSidecar(t *testing.T, client transport.Identity, procRoot string, configure ...func(*Config)) (port int, pin string) {
	t.Helper()
	r, w := io.Pipe()
	logger := slog.New(slog.NewJSONHandler(w, nil))
	cfg := validConfig(testnet.FreePort(t))
	cfg.ClientPin = client.Fingerprint()
	cfg.ProcRoot = procRoot
	for _, c := range configure {
		c(&cfg)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, logger); w.Close() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	buf := make([]byte, 4096)
	n, err := r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, r) //nolint:errcheck // drains the rest of the log
	lines := logLines(t, bytes.NewBuffer(buf[:n]))
	return cfg.Port, lines[0]["fingerprint"].(string)
}

func dialSidecar(t *testing.T, id transport.Identity, port int, pin string) *quic.Conn {
	t.Helper()
	return transporttest.Dial(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, transport.ClientTLS(id, pin))
}

// fakeProc is a /proc with one target process (PID 1) and its environment.
func fakeProc(t *testing.T, environ string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "environ"), []byte(environ), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comm"), []byte("app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "root", "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 198.19.0.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestServerHelloEnvAndDial(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00SECRET=s3cret\x00"))
	conn := dialSidecar(t, client, port, pin)
	ctx := t.Context()

	control, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(control)
	if err := wire.WriteMessage(control, wire.Hello{Version: wire.Version, Features: []string{"env", "dial-tcp", "future"}}); err != nil {
		t.Fatal(err)
	}
	msg, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	hello, ok := msg.(wire.HelloReply)
	if !ok || !slices.Equal(hello.Features, []string{"env", "dial-tcp"}) || hello.TargetPID != 1 {
		t.Fatalf("hello reply = %#v", msg)
	}
	if err := wire.WriteMessage(control, wire.EnvRequest{}); err != nil {
		t.Fatal(err)
	}
	msg, err = r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if env, ok := msg.(wire.EnvReply); !ok || !slices.Equal(env.Environ, []string{"A=1", "SECRET=s3cret"}) {
		t.Fatalf("env reply = %#v", msg)
	}

	t.Run("dial relays bytes", func(t *testing.T) {
		echo := testnet.TCPEcho(t)
		stream := dial(t, conn, echo)
		if _, err := stream.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(stream, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo = %q, %v", buf, err)
		}
		stream.Close()
	})
	t.Run("udp datagrams keep their boundaries", func(t *testing.T) {
		stream, reply := dialNet(t, conn, "udp", testnet.UDPEcho(t, ""))
		if err := reply.Err(); err != nil {
			t.Fatal(err)
		}
		for _, msg := range []string{"one", "", "three"} {
			if err := wire.WriteDatagram(stream, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, err := wire.ReadDatagram(stream, buf)
			if err != nil || string(buf[:n]) != msg {
				t.Fatalf("echo of %q = %q, %v", msg, buf[:n], err)
			}
		}
		stream.Close()
	})
	t.Run("files of the target's root", func(t *testing.T) {
		if err := wire.WriteMessage(control, wire.FileRequest{Path: "/etc/resolv.conf"}); err != nil {
			t.Fatal(err)
		}
		msg, err := r.ReadMessage()
		if reply, ok := msg.(wire.FileReply); err != nil || !ok || string(reply.Data) != "nameserver 198.19.0.10\n" || reply.More {
			t.Fatalf("file reply = %#v, %v", msg, err)
		}
		for path, want := range map[string]error{"/etc/missing": syscall.ENOENT, "/etc": syscall.EISDIR, "etc/x": syscall.EINVAL, "/etc/../x": syscall.EINVAL} {
			if err := wire.WriteMessage(control, wire.FileRequest{Path: path}); err != nil {
				t.Fatal(err)
			}
			msg, err := r.ReadMessage()
			if reply, ok := msg.(wire.FileReply); err != nil || !ok || !errors.Is(reply.Err(), want) {
				t.Fatalf("%s: reply = %#v, %v; want %v", path, msg, err, want)
			}
		}
	})
	t.Run("refused stays refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		_, reply := dialReply(t, conn, addr)
		if !errors.Is(reply.Err(), syscall.ECONNREFUSED) {
			t.Fatalf("dial of a closed port: %v, want ECONNREFUSED", reply.Err())
		}
	})
	t.Run("a malformed first message closes only that stream", func(t *testing.T) {
		stream, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Write([]byte{0xff, 0, 0, 0, 1, 0}); err != nil {
			t.Fatal(err)
		}
		if msg, err := wire.NewReader(stream).ReadMessage(); err == nil {
			if _, ok := msg.(wire.Error); !ok {
				t.Fatalf("reply to garbage = %#v, want an Error", msg)
			}
		}
		// The connection still serves.
		stream = dial(t, conn, testnet.TCPEcho(t))
		stream.Close()
	})
}

func TestServerRefusesOtherClientKey(t *testing.T) {
	pinned, _ := transport.NewIdentity()
	intruder, _ := transport.NewIdentity()
	port, pin := startSidecar(t, pinned, fakeProc(t, "A=1\x00"))

	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, udp, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, transport.ClientTLS(intruder, pin))
	if err != nil {
		return // refused during the handshake
	}
	defer conn.CloseWithError(0, "")
	// In TLS 1.3 the server checks the client's certificate after the client's handshake ends:
	// the refusal shows on first use.
	stream, err := conn.OpenStreamSync(ctx)
	if err == nil {
		_ = wire.WriteMessage(stream, wire.Hello{Version: wire.Version})
		_, err = wire.NewReader(stream).ReadMessage()
	}
	if err == nil {
		t.Fatal("a client with another key was served")
	}
}

// dial opens a data stream to addr and fails the test unless the pod-side connect succeeded.
func dial(t *testing.T, conn *quic.Conn, addr string) *quic.Stream {
	t.Helper()
	stream, reply := dialReply(t, conn, addr)
	if err := reply.Err(); err != nil {
		t.Fatal(err)
	}
	return stream
}

// dialReply opens a data stream to addr and returns the sidecar's reply.
func dialReply(t *testing.T, conn *quic.Conn, addr string) (*quic.Stream, wire.DialReply) {
	t.Helper()
	return dialNet(t, conn, "tcp", addr)
}

func dialNet(t *testing.T, conn *quic.Conn, network, addr string) (*quic.Stream, wire.DialReply) {
	t.Helper()
	stream, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteMessage(stream, wire.Dial{Network: network, Address: addr, TimeoutMillis: 2000}); err != nil {
		t.Fatal(err)
	}
	msg, err := wire.NewReader(stream).ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	reply, ok := msg.(wire.DialReply)
	if !ok {
		t.Fatalf("reply to Dial = %#v", msg)
	}
	return stream, reply
}

func TestServerSendsALargeEnvironmentInChunks(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	var environ strings.Builder
	var want []string
	for i := range 3000 {
		kv := fmt.Sprintf("SVC_%d_PORT=tcp://198.19.%d.%d:%s", i, i/256, i%256, strings.Repeat("9", 80))
		want = append(want, kv)
		environ.WriteString(kv + "\x00")
	}
	port, pin := startSidecar(t, client, fakeProc(t, environ.String()))
	conn := dialSidecar(t, client, port, pin)
	control, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(control)
	if err := wire.WriteMessage(control, wire.Hello{Version: wire.Version, Features: []string{wire.FeatureEnv}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteMessage(control, wire.EnvRequest{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	replies := 0
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		reply, ok := msg.(wire.EnvReply)
		if !ok {
			t.Fatalf("reply %#v", msg)
		}
		replies++
		got = append(got, reply.Environ...)
		if !reply.More {
			break
		}
	}
	if !slices.Equal(got, want) || replies < 4 {
		t.Fatalf("%d variables in %d replies, want the %d sent", len(got), replies, len(want))
	}
}

// openControl opens the control stream and says hello with features.
func openControl(t *testing.T, conn *quic.Conn, features ...string) (*quic.Stream, *wire.Reader) {
	t.Helper()
	control, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(control)
	if err := wire.WriteMessage(control, wire.Hello{Version: wire.Version, Features: features}); err != nil {
		t.Fatal(err)
	}
	if msg, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(wire.HelloReply); !ok {
		t.Fatalf("hello reply = %#v", msg)
	}
	return control, r
}

// TestServerRefusesAVariableOverAFrame: one variable that no frame can carry is refused by
// name, not cut and not sent in part.
func TestServerRefusesAVariableOverAFrame(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	environ := "A=1\x00HUGE_CERT=" + strings.Repeat("c", 70<<10) + "\x00B=2\x00"
	port, pin := startSidecar(t, client, fakeProc(t, environ))
	control, r := openControl(t, dialSidecar(t, client, port, pin), wire.FeatureEnv)
	if err := wire.WriteMessage(control, wire.EnvRequest{}); err != nil {
		t.Fatal(err)
	}
	msg, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	refusal, ok := msg.(wire.Error)
	if !ok || refusal.Code != wire.ErrCodeTooLarge || !strings.Contains(refusal.Reason, "HUGE_CERT") {
		t.Fatalf("reply = %#v, want a too-large Error naming HUGE_CERT", msg)
	}
	// The control stream goes on.
	if err := wire.WriteMessage(control, wire.Heartbeat{Seq: 3}); err != nil {
		t.Fatal(err)
	}
	if msg, err := r.ReadMessage(); err != nil || msg != (wire.Heartbeat{Seq: 3}) {
		t.Fatalf("heartbeat after the refusal: %#v, %v", msg, err)
	}
}

// TestServerEndsRefusedDialStreams: a refused Dial's stream ends even when the client never
// closes its side, so refused dials cannot use up the connection's stream limit.
func TestServerEndsRefusedDialStreams(t *testing.T) {
	const limit = 4
	ctx, conn := serveWithStreamLimit(t, Config{}, limit)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	for i := range 3 * limit {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		stream, err := conn.OpenStreamSync(octx)
		ocancel()
		if err != nil {
			t.Fatalf("dial %d with a limit of %d streams: %v", i, limit, err)
		}
		// As a careless client would: read the refusal, leave the stream as it is.
		if err := wire.WriteMessage(stream, wire.Dial{Network: "tcp", Address: addr, TimeoutMillis: 2000}); err != nil {
			t.Fatal(err)
		}
		msg, err := wire.NewReader(stream).ReadMessage()
		if reply, ok := msg.(wire.DialReply); err != nil || !ok || !errors.Is(reply.Err(), syscall.ECONNREFUSED) {
			t.Fatalf("dial %d: %#v, %v; want ECONNREFUSED", i, msg, err)
		}
	}
}

// serveWithStreamLimit serves cfg on a QUIC listener on loopback that lets a client open at
// most limit streams at once, and returns a connection to it and the context that ends the
// server (at the test's end).
func serveWithStreamLimit(t *testing.T, cfg Config, limit int64) (context.Context, *quic.Conn) {
	t.Helper()
	cfg.TTL = time.Hour
	ctx, dial := serveOnLoopback(t, newServer(cfg, slog.New(slog.DiscardHandler)), limit)
	return ctx, dial()
}

// serveOnLoopback serves srv on a QUIC listener on loopback that lets a client open at most
// limit streams at once, and returns the context that ends the server (at the test's end) and
// a function that connects a new client.
func serveOnLoopback(t *testing.T, srv *server, limit int64) (context.Context, func() *quic.Conn) {
	t.Helper()
	peers := transporttest.NewPeers(t)
	pc := transporttest.ListenLoopback(t)
	ln, err := quic.Listen(pc, peers.ServerTLS(), &quic.Config{MaxIncomingStreams: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.in.close()
	})
	return ctx, func() *quic.Conn {
		return transporttest.Dial(t, pc.LocalAddr(), peers.ClientTLS())
	}
}
