package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// fakeSidecar stands in for the sidecar on loopback QUIC, so that a session can be tested
// against replies no real sidecar sends: it answers the hello with features, hands each later
// control request to answer (in order, one at a time, as the sidecar does), each data stream
// to dial, and each filesystem stream to fs.
type fakeSidecar struct {
	features []string
	answer   func(w io.Writer, req wire.Message)
	dial     func(stream *quic.Stream, req wire.Dial)
	fs       func(stream *quic.Stream, r *wire.Reader, req wire.FSRequest)
	// accepted, if set, gets the client's connection.
	accepted func(conn *quic.Conn)
}

// session starts the fake and returns a session connected to it.
func (f fakeSidecar) session(t *testing.T) *session {
	t.Helper()
	serverID, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	clientID, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ln, err := transport.Listen(pc, transport.ServerTLS(serverID, clientID.Fingerprint()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go f.serve(t.Context(), ln.Listener)

	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, udp, pc.LocalAddr(), transport.ClientTLS(clientID, serverID.Fingerprint()))
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	s, err := newSession(ctx, conn, false, udp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (f fakeSidecar) serve(ctx context.Context, ln *quic.Listener) {
	conn, err := ln.Accept(ctx)
	if err != nil {
		return
	}
	if f.accepted != nil {
		f.accepted(conn)
	}
	for {
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go func() {
			r := wire.NewReader(stream)
			first, err := r.ReadMessage()
			if err != nil {
				return
			}
			switch m := first.(type) {
			case wire.Hello:
				if wire.WriteMessage(stream, wire.HelloReply{Version: wire.Version, Features: f.features}) != nil {
					return
				}
				for {
					req, err := r.ReadMessage()
					if err != nil {
						return
					}
					f.answer(stream, req)
				}
			case wire.Dial:
				f.dial(stream, m)
			case wire.FSRequest:
				f.fs(stream, r, m)
			}
		}()
	}
}

// fileReplies is a file's content as the sidecar sends it: in chunks, all but the last with More.
func fileReplies(w io.Writer, data []byte) {
	for {
		chunk := data[:min(len(data), wire.MaxFileChunk)]
		data = data[len(chunk):]
		if wire.WriteMessage(w, wire.FileReply{Data: chunk, More: len(data) > 0}) != nil || len(data) == 0 {
			return
		}
	}
}

// bigEnviron is about 300 KiB of service-link variables.
func bigEnviron() []string {
	var env []string
	for i := range 3000 {
		env = append(env, fmt.Sprintf("SVC_%d_SERVICE_HOST=%s", i, strings.Repeat("h", 90)))
	}
	return env
}

func TestSessionEnvironInChunks(t *testing.T) {
	want := bigEnviron()
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, req wire.Message) {
			switch req.(type) {
			case wire.EnvRequest:
				replies, err := wire.SplitEnviron(want)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range replies {
					_ = wire.WriteMessage(w, r)
				}
			case wire.FileRequest:
				fileReplies(w, []byte("next"))
			}
		},
	}.session(t)
	got, err := s.Environ(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d variables, want the %d sent, in order", len(got), len(want))
	}
	// The whole answer was read: the next request gets its own.
	if data, err := s.ReadFile(t.Context(), "/etc/hostname"); err != nil || string(data) != "next" {
		t.Fatalf("the request after: %q, %v", data, err)
	}
}

func TestSessionEnvironOverTheLimit(t *testing.T) {
	entry := "K=" + strings.Repeat("v", 60<<10)
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, req wire.Message) {
			if _, ok := req.(wire.FileRequest); ok {
				fileReplies(w, []byte("stale"))
				return
			}
			// A broken sidecar whose environment never ends.
			for wire.WriteMessage(w, wire.EnvReply{Environ: []string{entry}, More: true}) == nil {
			}
		},
	}.session(t)
	_, err := s.Environ(t.Context())
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("Environ = %v, want the limit", err)
	}
	// The rest of that answer is unread: later requests fail instead of taking it for theirs.
	if data, err := s.ReadFile(t.Context(), "/etc/hosts"); err == nil {
		t.Fatalf("a request after an abandoned answer got %q", data)
	}
}

func TestSessionEnvironRefused(t *testing.T) {
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, _ wire.Message) {
			_, err := wire.SplitEnviron([]string{"HUGE_CERT=" + strings.Repeat("c", 70<<10)})
			_ = wire.WriteMessage(w, wire.ErrorOf(err))
		},
	}.session(t)
	_, err := s.Environ(t.Context())
	if !isUserError(err) || !strings.Contains(err.Error(), "HUGE_CERT") || !errors.Is(err, wire.Error{Code: wire.ErrCodeTooLarge}) {
		t.Fatalf("Environ = %v, want a user error naming HUGE_CERT", err)
	}
}

func TestSessionReadFile(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	failures := map[string]syscall.Errno{
		"/etc/missing": syscall.ENOENT,
		"/etc":         syscall.EISDIR,
		"/etc/hosts/x": syscall.ENOTDIR,
		"/root/secret": syscall.EACCES,
		"/var/huge":    syscall.EFBIG,
		"etc/hosts":    syscall.EINVAL,
	}
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, req wire.Message) {
			path := req.(wire.FileRequest).Path
			if errno, ok := failures[path]; ok {
				_ = wire.WriteMessage(w, wire.FileReply{Errno: wire.ErrnoOf(errno), Reason: "open " + path + ": " + errno.Error()})
				return
			}
			fileReplies(w, big)
		},
	}.session(t)
	data, err := s.ReadFile(t.Context(), "/srv/big")
	if err != nil || !bytes.Equal(data, big) {
		t.Fatalf("ReadFile = %d bytes, %v; want the %d sent", len(data), err, len(big))
	}
	for path, want := range failures {
		if _, err := s.ReadFile(t.Context(), path); !errors.Is(err, want) {
			t.Errorf("ReadFile(%q) = %v, want %v", path, err, want)
		}
	}
}

// TestSessionReadFileConcurrently: requests from many goroutines each get their own answer.
func TestSessionReadFileConcurrently(t *testing.T) {
	content := func(path string) []byte { return bytes.Repeat([]byte(path+";"), 100<<10/len(path)) } // two chunks
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, req wire.Message) {
			fileReplies(w, content(req.(wire.FileRequest).Path))
		},
	}.session(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				path := fmt.Sprintf("/srv/%d/%d", g, i)
				if data, err := s.ReadFile(t.Context(), path); err != nil || !bytes.Equal(data, content(path)) {
					t.Errorf("ReadFile(%s) = %.40q..., %v", path, data, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSessionReadFileOverTheLimit(t *testing.T) {
	chunk := make([]byte, wire.MaxFileChunk)
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, _ wire.Message) {
			for wire.WriteMessage(w, wire.FileReply{Data: chunk, More: true}) == nil {
			}
		},
	}.session(t)
	if _, err := s.ReadFile(t.Context(), "/dev/zero"); err == nil || !strings.Contains(err.Error(), "the most a file may have") {
		t.Fatalf("ReadFile = %v, want the limit", err)
	}
}

func TestSessionReadFileNeedsTheFeature(t *testing.T) {
	s := fakeSidecar{features: []string{wire.FeatureEnv}}.session(t)
	if _, err := s.ReadFile(t.Context(), "/etc/hosts"); !isUserError(err) {
		t.Fatalf("ReadFile from a sidecar without %s = %v, want a user error", wire.FeatureReadFile, err)
	}
}

func TestSessionDialUDP(t *testing.T) {
	dialed := make(chan wire.Dial, 1)
	s := fakeSidecar{
		features: clientFeatures(false),
		dial: func(stream *quic.Stream, req wire.Dial) {
			dialed <- req
			if wire.WriteMessage(stream, wire.DialReply{}) != nil {
				return
			}
			buf := make([]byte, wire.MaxDatagram)
			for {
				n, err := wire.ReadDatagram(stream, buf)
				if err != nil {
					_ = stream.Close()
					return
				}
				_ = wire.WriteDatagram(stream, append([]byte("echo:"), buf[:n]...))
			}
		},
	}.session(t)
	stream, err := s.Dial(t.Context(), "udp", "10.96.0.10:53", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if req := <-dialed; req.Network != "udp" || req.Address != "10.96.0.10:53" || req.TimeoutMillis != 1000 {
		t.Fatalf("the sidecar got %#v", req)
	}
	buf := make([]byte, 100)
	for _, msg := range []string{"query", ""} {
		if err := wire.WriteDatagram(stream, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if n, err := wire.ReadDatagram(stream, buf); err != nil || string(buf[:n]) != "echo:"+msg {
			t.Fatalf("datagram %q came back as %q, %v", msg, buf[:n], err)
		}
	}
}

// TestSessionDialRefusedEndsTheStream: a refused Dial ends our side of its stream too, so the
// sidecar's side ends even if the sidecar only closes its own.
func TestSessionDialRefusedEndsTheStream(t *testing.T) {
	ended := make(chan error, 1)
	s := fakeSidecar{
		features: clientFeatures(false),
		dial: func(stream *quic.Stream, _ wire.Dial) {
			_ = wire.WriteMessage(stream, wire.DialReply{Errno: wire.ErrnoOf(syscall.ECONNREFUSED), Reason: "connection refused"})
			_ = stream.Close()
			_, err := io.Copy(io.Discard, stream)
			ended <- err
		},
	}.session(t)
	if _, err := s.Dial(t.Context(), "tcp", "10.0.0.1:80", time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial = %v, want ECONNREFUSED", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the client left its side of a refused stream open")
	}
}

// TestSessionAbandonedAnswerFailsLaterRequests: after a reply it cannot place, a request gives
// up the control stream, and the rest of its answer is never taken for the next request's.
func TestSessionAbandonedAnswerFailsLaterRequests(t *testing.T) {
	s := fakeSidecar{
		features: clientFeatures(false),
		answer: func(w io.Writer, req wire.Message) {
			if req.(wire.FileRequest).Path == "/a" {
				_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("first part of a, "), More: true})
				_ = wire.WriteMessage(w, wire.Heartbeat{Seq: 1}) // out of place
				_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("rest of a")})
				return
			}
			_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("b")})
		},
	}.session(t)
	if _, err := s.ReadFile(t.Context(), "/a"); err == nil {
		t.Fatal("ReadFile took a heartbeat for part of a file")
	}
	if data, err := s.ReadFile(t.Context(), "/b"); err == nil {
		t.Fatalf("the request after got %q, an answer that may not be its own", data)
	}
}
