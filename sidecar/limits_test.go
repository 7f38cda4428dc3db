package sidecar

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/semaphore"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A file read waits while others hold the file budget, and fails with ENOMEM when they hold
// it for longer than the budget's wait; a write's data counts as a read's.
func TestFileBudgetQueuesThenRefuses(t *testing.T) {
	procRoot, root, _ := fsTarget(t)
	srv := newServer(Config{ProcRoot: procRoot}, slog.New(slog.DiscardHandler))
	srv.files = newBudget("file contents", 256<<10)
	srv.files.wait = 200 * time.Millisecond
	content := bytes.Repeat([]byte("x"), 100<<10)
	if err := os.WriteFile(filepath.Join(root, "srv", "file"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	others := srv.files.hold()
	if err := others.take(t.Context(), 200<<10); err != nil {
		t.Fatal(err)
	}
	read := wire.FSRequest{Op: wire.FSRead, Path: "/srv/file"}
	if _, err := fsDo(t, srv, read); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("a read past the budget: %v, want ENOMEM", err)
	}
	// Each caller gives back what its request held once answered, as serveFS and sendFile do.
	h := srv.files.hold()
	defer h.release()
	if data, err := srv.readTargetFile(t.Context(), "/srv/file", h); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("a FileRequest past the budget: %d bytes, %v; want ENOMEM", len(data), err)
	}
	var write []byte
	for data := content; len(data) > 0; {
		chunk := data[:min(len(data), 40<<10)]
		data = data[len(chunk):]
		var err error
		if write, err = wire.AppendMessage(write, wire.FSRequest{Op: wire.FSWrite, Data: chunk, More: len(data) > 0}); err != nil {
			t.Fatal(err)
		}
	}
	r := wire.NewReader(bytes.NewReader(write))
	first, _ := r.ReadMessage()
	if _, err := gatherWrite(t.Context(), r, first.(wire.FSRequest), srv.maxFile(), h); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("a write past the budget: %v, want ENOMEM", err)
	}
	h.release()

	// Queued, not refused, while the budget comes back within the wait.
	time.AfterFunc(50*time.Millisecond, others.release)
	replies, err := fsDo(t, srv, read)
	if err != nil {
		t.Fatalf("a read once the budget came back: %v", err)
	}
	var got []byte
	for _, r := range replies {
		got = append(got, r.Data...)
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("read %d bytes, want %d", len(got), len(content))
	}
	if free := srv.files.sem.TryAcquire(256 << 10); !free {
		t.Fatal("the read did not give its share back")
	}
}

// A mirror copy never waits for the copies' budget: one that finds it spent is dropped, and
// gives back what it held.
func TestMirrorCopiesBudget(t *testing.T) {
	sidecarEnd, _ := quicPair(t) // the plugin end never accepts the stream: the queue stays
	copies := newBudget("mirror copies", 1<<20)
	first := newMirrorCopy(slog.New(slog.DiscardHandler), copies, sidecarEnd, wire.Incoming{Port: 8080, Remote: "198.18.0.1:1"})
	second := newMirrorCopy(slog.New(slog.DiscardHandler), copies, sidecarEnd, wire.Incoming{Port: 8080, Remote: "198.18.0.1:2"})
	defer first.Close()
	defer second.Close()
	_, _ = first.Write(make([]byte, 700<<10))
	_, _ = second.Write(make([]byte, 700<<10))
	first.mu.Lock()
	firstDropped := first.dropped
	first.mu.Unlock()
	second.mu.Lock()
	secondDropped := second.dropped
	second.mu.Unlock()
	if firstDropped || !secondDropped {
		t.Fatalf("dropped: first %v, second %v; want the second alone, past the budget", firstDropped, secondDropped)
	}
	if held := second.hold.held(); held != 0 {
		t.Fatalf("the dropped copy holds %d bytes", held)
	}
}

// Past maxClients, a new client connection is closed at once, saying why; one that leaves
// makes room.
func TestClientsPastTheCapAreRefused(t *testing.T) {
	srv := newServer(Config{Flags: sidecarapi.Flags{TTL: time.Hour}}, slog.New(slog.DiscardHandler))
	srv.clients = semaphore.NewWeighted(2)
	_, dial := serveOnLoopback(t, srv, 16)
	first, second := dial(), dial()
	openControl(t, first)
	openControl(t, second)
	third := dial()
	select {
	case <-third.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a third client was served")
	}
	var appErr *quic.ApplicationError
	if err := context.Cause(third.Context()); !errors.As(err, &appErr) || appErr.ErrorCode != codeTooMany {
		t.Fatalf("the third client's connection ended with %v, want code %d", err, codeTooMany)
	}
	_ = first.CloseWithError(0, "")
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := dial()
		select {
		case <-c.Context().Done():
			if time.Now().After(deadline) {
				t.Fatal("no client served after one left")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		case <-time.After(300 * time.Millisecond):
		}
		openControl(t, c)
		return
	}
}

// Past maxStreams, all clients together, a new stream is reset at once.
func TestStreamsPastTheCapAreRefused(t *testing.T) {
	srv := newServer(Config{Flags: sidecarapi.Flags{TTL: time.Hour}}, slog.New(slog.DiscardHandler))
	srv.streams = semaphore.NewWeighted(2)
	_, dial := serveOnLoopback(t, srv, 16)
	openControl(t, dial())
	conn := dial()
	openControl(t, conn)
	stream, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = wire.WriteMessage(stream, wire.Hello{Version: wire.Version})
	_, err = wire.NewReader(stream).ReadMessage()
	var streamErr *quic.StreamError
	if !errors.As(err, &streamErr) || streamErr.ErrorCode != streamCodeTooMany {
		t.Fatalf("a third stream: %v, want reset with code %d", err, streamCodeTooMany)
	}
}

// A client subscribes at most maxSubscriptions ports; the same port again is no new one.
func TestSubscriptionsPerClientAreCapped(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a mirror by capture needs CAP_NET_RAW")
	}
	srv := newServer(Config{Flags: sidecarapi.Flags{TTL: time.Hour}}, slog.New(slog.DiscardHandler))
	srv.maxSubscriptions = 2
	_, dial := serveOnLoopback(t, srv, 16)
	control, r := openControl(t, dial(), wire.FeatureMirror)
	subscribe := func(port uint16) error {
		t.Helper()
		if err := wire.WriteMessage(control, wire.Subscribe{Port: port, Mode: wire.ModeMirror}); err != nil {
			t.Fatal(err)
		}
		msg, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return msg.(wire.SubscribeReply).Err()
	}
	ports := freeTCPPorts(t, 3)
	for _, port := range []uint16{ports[0], ports[1], ports[0]} {
		if err := subscribe(port); err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
	}
	if err := subscribe(ports[2]); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a third port: %v, want ENOSPC", err)
	}
}

// freeTCPPorts returns n loopback TCP ports free a moment ago.
func freeTCPPorts(t *testing.T, n int) []uint16 {
	t.Helper()
	var ports []uint16
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, uint16(ln.Addr().(*net.TCPAddr).Port))
	}
	return ports
}
