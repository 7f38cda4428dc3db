package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
)

// transferSize is the size of the big transfers: 64 MiB (about 2s per transfer even under the
// race detector), less under -short.
func transferSize() int64 {
	if testing.Short() {
		return 8 << 20
	}
	return 64 << 20
}

// testLogger logs at debug level into a buffer that is shown only when the test fails; logging to
// t directly would panic when a goroutine logs after the test has ended.
func testLogger(t testing.TB) *slog.Logger {
	var buf syncbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// peers is a server and a client identity, each pinning the other.
type peers struct {
	server, client Identity
}

func newPeers(t testing.TB) peers {
	t.Helper()
	s, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return peers{server: s, client: c}
}

func (p peers) serverTLS() *tls.Config { return ServerTLS(p.server, p.client.Fingerprint()) }
func (p peers) clientTLS() *tls.Config { return ClientTLS(p.client, p.server.Fingerprint()) }

func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func listenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// streamHandler serves one QUIC stream accepted by serveQUIC.
type streamHandler func(*quic.Stream)

// serveQUIC accepts connections on ln and runs handle for each stream, until the test ends.
func serveQUIC(t testing.TB, ln *Listener, handle streamHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.CloseWithError(0, "")
				for {
					str, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					wg.Go(func() { handle(str) })
				}
			})
		}
	})
}

// echo writes back what it reads.
func echo(str *quic.Stream) {
	defer str.Close()
	io.Copy(str, str)
}

// hashSink reads to the end of the stream and answers with the SHA-256 of what it read.
func hashSink(str *quic.Stream) {
	defer str.Close()
	h := sha256.New()
	if _, err := io.Copy(h, str); err != nil {
		str.CancelWrite(1)
		return
	}
	str.Write(h.Sum(nil))
}

// countSink reads to the end of the stream and answers with one byte: the benchmarks' sink.
func countSink(str *quic.Stream) {
	defer str.Close()
	if _, err := io.Copy(io.Discard, str); err != nil {
		str.CancelWrite(1)
		return
	}
	str.Write([]byte{1})
}

// progressReader calls at(n) each time the bytes read so far pass a multiple of every.
type progressReader struct {
	r     io.Reader
	n     int64
	every int64
	at    func(n int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	before := p.n
	p.n += int64(n)
	if p.at != nil && p.every > 0 && p.n/p.every != before/p.every {
		p.at(p.n)
	}
	return n, err
}

// sendHashed sends size pseudo-random bytes on a new stream to a hashSink and checks that the sink
// saw the same bytes. progress, if not nil, is called as the data is written.
func sendHashed(ctx context.Context, t testing.TB, conn *quic.Conn, size int64, seed uint64, progress func(sent int64)) {
	t.Helper()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer str.CancelRead(0)
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(2); str.CancelRead(2) })
	defer stop()

	var seedBytes [32]byte
	seedBytes[0] = byte(seed)
	seedBytes[1] = byte(seed >> 8)
	src := io.LimitReader(rand.NewChaCha8(seedBytes), size)
	h := sha256.New()
	pr := &progressReader{r: io.TeeReader(src, h), every: size / 8, at: progress}
	if _, err := io.Copy(str, pr); err != nil {
		t.Fatalf("send after %d of %d bytes: %v", pr.n, size, err)
	}
	if err := str.Close(); err != nil {
		t.Fatalf("close stream: %v", err)
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(str, got); err != nil {
		t.Fatalf("read the sink's hash: %v", err)
	}
	if want := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("sink hashed %x, sent %x", got, want)
	}
}

// echoOnce sends msg on a new stream to an echo handler and checks the answer.
func echoOnce(ctx context.Context, t testing.TB, conn *quic.Conn, msg string) {
	t.Helper()
	if err := tryEcho(ctx, conn, msg); err != nil {
		t.Fatal(err)
	}
}

func tryEcho(ctx context.Context, conn *quic.Conn, msg string) error {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(2); str.CancelRead(2) })
	defer stop()
	if _, err := io.WriteString(str, msg); err != nil {
		return err
	}
	if err := str.Close(); err != nil {
		return err
	}
	got, err := io.ReadAll(str)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo: got " + string(got) + ", want " + msg)
	}
	return nil
}

// tcpDialer dials addr and remembers every connection it made, so tests can break them.
type tcpDialer struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func (d *tcpDialer) dial(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

func (d *tcpDialer) last() net.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[len(d.conns)-1]
}

// recordingListener remembers the connections it accepted, so tests can break them from the
// server's side.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *recordingListener) last() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[len(l.conns)-1]
}

// streamPath is a stream-path setup on loopback TCP: a server listening, a client with a QUIC
// connection to it.
type streamPath struct {
	ln     *recordingListener
	server *StreamPacketServer
	dialer *tcpDialer
	client *StreamPacketClient
	conn   *quic.Conn
}

// newStreamPath starts a stream-path server on loopback that handles streams with handle.
func newStreamServer(t testing.TB, p peers, handle streamHandler) (*recordingListener, *StreamPacketServer) {
	t.Helper()
	ln := &recordingListener{Listener: listenTCP(t)}
	srv := NewStreamPacketServer(ln, testLogger(t))
	t.Cleanup(func() { srv.Close() })
	qln, err := Listen(srv, p.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	serveQUIC(t, qln, handle)
	return ln, srv
}

// dialStream connects a new stream-path client with its QUIC connection to the server at addr.
func dialStream(ctx context.Context, t testing.TB, p peers, addr string) (*tcpDialer, *StreamPacketClient, *quic.Conn) {
	t.Helper()
	d := &tcpDialer{addr: addr}
	cl, err := NewStreamPacketClient(ctx, d.dial, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	conn, err := Dial(ctx, cl, cl.Addr(), p.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return d, cl, conn
}

func newStreamPath(ctx context.Context, t testing.TB, handle streamHandler) *streamPath {
	t.Helper()
	p := newPeers(t)
	ln, srv := newStreamServer(t, p, handle)
	d, cl, conn := dialStream(ctx, t, p, ln.Addr().String())
	return &streamPath{ln: ln, server: srv, dialer: d, client: cl, conn: conn}
}

// newUDPPath starts a QUIC server on a loopback UDP socket and connects a client to it.
func newUDPPath(ctx context.Context, t testing.TB, handle streamHandler) *quic.Conn {
	t.Helper()
	p := newPeers(t)
	spc := listenUDP(t)
	qln, err := Listen(spc, p.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	serveQUIC(t, qln, handle)
	conn, err := Dial(ctx, listenUDP(t), spc.LocalAddr(), p.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
