package capture

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// copyOf is the copies Listen makes, by client address.
type copyOf struct {
	mu     sync.Mutex
	copies map[string]*sink
	closed chan string
}

func (c *copyOf) open(f Flow) io.WriteCloser {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &lockedSink{c: c, client: f.Client.String()}
	c.copies[f.Client.String()] = &s.sink
	return s
}

type lockedSink struct {
	sink
	c      *copyOf
	client string
}

func (s *lockedSink) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.sink.Write(p)
}

func (s *lockedSink) Close() error {
	s.c.mu.Lock()
	s.sink.closed = true
	s.c.mu.Unlock()
	s.c.closed <- s.client
	return nil
}

// What clients send to a port on loopback, IPv4 and IPv6, is copied whole, while the server
// gets it as usual.
func TestCaptureCopiesWhatClientsSend(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a packet socket needs CAP_NET_RAW")
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skip(err)
			}
			defer ln.Close()
			received := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				b, _ := io.ReadAll(c)
				c.Close()
				received <- b
			}()
			copies := &copyOf{copies: map[string]*sink{}, closed: make(chan string, 1)}
			capture, err := Listen(uint16(ln.Addr().(*net.TCPAddr).Port), copies.open, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer capture.Close()

			sent := make([]byte, 4<<20)
			_, _ = rand.Read(sent)
			conn, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			for b := sent; len(b) > 0; b = b[min(len(b), 100_000):] {
				if _, err := conn.Write(b[:min(len(b), 100_000)]); err != nil {
					t.Fatal(err)
				}
			}
			conn.Close()
			if got := <-received; !bytes.Equal(got, sent) {
				t.Fatalf("the server got %d bytes, want %d", len(got), len(sent))
			}
			select {
			case client := <-copies.closed:
				copies.mu.Lock()
				got := copies.copies[client].Bytes()
				copies.mu.Unlock()
				if client != conn.LocalAddr().String() || !bytes.Equal(got, sent) {
					t.Fatalf("the copy of %s has %d bytes (equal %v), want %d from %s", client, len(got), bytes.Equal(got, sent), len(sent), conn.LocalAddr())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the copy did not end with the connection")
			}
		})
	}
}
