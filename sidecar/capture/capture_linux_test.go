package capture

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// copyOf is the copies Listen makes, by client address.
type copyOf struct {
	mu     sync.Mutex
	copies map[string]*sink
	closed chan string
}

func newCopyOf() *copyOf {
	return &copyOf{copies: map[string]*sink{}, closed: make(chan string, 16)}
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
			copies := newCopyOf()
			capture, err := NewSocket(slog.New(slog.DiscardHandler)).Listen(uint16(ln.Addr().(*net.TCPAddr).Port), copies.open)
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

// Every port goes through one packet socket, so one receive ring, whatever their number: the
// kernel allocates rings outside the pod's memory cgroup. Closing a port ends its copies and
// leaves the others' going; the socket goes with the last port.
func TestOneSocketCapturesEveryPort(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a packet socket needs CAP_NET_RAW")
	}
	var ports [2]uint16
	for i := range ports {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		ports[i] = uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	copies := newCopyOf()
	s := NewSocket(slog.New(slog.DiscardHandler))
	var captures [2]*Capture
	for i, port := range ports {
		c, err := s.Listen(port, copies.open)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		captures[i] = c
	}
	if n := packetSockets(t); n != 1 {
		t.Fatalf("%d packet sockets for %d ports, want 1", n, len(ports))
	}
	send := func(port uint16, msg string, keepOpen bool) net.Conn {
		conn, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if !keepOpen {
			conn.Close()
		}
		return conn
	}
	wantCopy := func(conn net.Conn, msg string) {
		t.Helper()
		select {
		case client := <-copies.closed:
			copies.mu.Lock()
			got := copies.copies[client].String()
			copies.mu.Unlock()
			if client != conn.LocalAddr().String() || got != msg {
				t.Fatalf("copy of %s: %q, want %q from %s", client, got, msg, conn.LocalAddr())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no copy of %q", msg)
		}
	}
	wantCopy(send(ports[0], "to the first", false), "to the first")
	wantCopy(send(ports[1], "to the second", false), "to the second")

	open := send(ports[0], "still open", true)
	defer open.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		copies.mu.Lock()
		c := copies.copies[open.LocalAddr().String()]
		seen := c != nil && c.Len() > 0
		copies.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the open connection was not copied")
		}
	}
	if err := captures[0].Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case client := <-copies.closed:
		if client != open.LocalAddr().String() {
			t.Fatalf("closing the port ended the copy of %s", client)
		}
	default:
		t.Fatal("the port closed, its connection's copy did not end")
	}
	wantCopy(send(ports[1], "after the first closed", false), "after the first closed")
	if err := captures[1].Close(); err != nil {
		t.Fatal(err)
	}
	if n := packetSockets(t); n != 0 {
		t.Fatalf("%d packet sockets left with no port", n)
	}
}

// Past maxPorts, and for a port captured already, Listen says why it cannot.
func TestListenRefusesWhatTheSocketCannotTake(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a packet socket needs CAP_NET_RAW")
	}
	s := NewSocket(slog.New(slog.DiscardHandler))
	open := func(Flow) io.WriteCloser { return nil }
	for port := uint16(1); port <= maxPorts; port++ {
		c, err := s.Listen(port, open)
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		defer c.Close()
	}
	if _, err := s.Listen(1, open); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a port captured twice: %v", err)
	}
	if _, err := s.Listen(maxPorts+1, open); err == nil || !strings.Contains(err.Error(), "as many as one packet filter takes") {
		t.Errorf("one port past maxPorts: %v", err)
	}
	if n := packetSockets(t); n != 1 {
		t.Fatalf("%d packet sockets for %d ports, want 1", n, maxPorts)
	}
}

// packetSockets counts this process's packet sockets.
func packetSockets(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/net/packet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inodes := map[string]bool{}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if fields := strings.Fields(lines.Text()); len(fields) > 0 {
			inodes["socket:["+fields[len(fields)-1]+"]"] = true
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && inodes[link] {
			n++
		}
	}
	return n
}
