//go:build linux

package layer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

// The test binary is also the helper and the program run under the layer: TestMain hands over
// to HelperMain for the first, and to a child scenario for the second.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == HelperArg {
		os.Exit(HelperMain(os.Args[2:]))
	}
	if scenario := os.Getenv("LAYER_TEST_CHILD"); scenario != "" {
		os.Exit(runChild(scenario, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// childScenarios are further child programs, registered by other test files.
var childScenarios = map[string]func(args []string) int{}

// runChild is what the program under the layer does; it prints results on stdout.
func runChild(scenario string, args []string) int {
	if f, ok := childScenarios[scenario]; ok {
		return f(args)
	}
	switch scenario {
	case "tcp":
		conn, err := net.DialTimeout("tcp", args[0], 5*time.Second)
		if err != nil {
			fmt.Println("error:", errName(err))
			return 0
		}
		defer conn.Close()
		fmt.Fprintf(conn, "hello\n")
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			fmt.Println("read error:", err)
			return 1
		}
		fmt.Printf("reply: %s", line)
		fmt.Printf("peer: %s\n", conn.RemoteAddr())
	case "tcp6":
		// An AF_INET6 socket connecting to a v4-mapped address, with raw syscalls, as
		// dual-stack programs (Java, Node) do: the relay must take the IPv6 path.
		ap := netip.MustParseAddrPort(args[0])
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		if err := unix.Connect(fd, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		p := peer.(*unix.SockaddrInet6)
		f := os.NewFile(uintptr(fd), "tcp6")
		fmt.Fprintf(f, "hello\n")
		line, _ := bufio.NewReader(f).ReadString('\n')
		fmt.Printf("reply: %speer: %s\n", line, netip.AddrPortFrom(netip.AddrFrom16(p.Addr), uint16(p.Port)))
	case "udp":
		conn, err := net.Dial("udp", args[0])
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Printf("reply: %s\n", buf[:n])
	case "udp-unconnected":
		conn, err := net.ListenUDP("udp4", nil)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(args[0]))
		if _, err := conn.WriteToUDP([]byte("ping"), dst); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		buf := make([]byte, 100)
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Printf("reply: %s from %s\n", buf[:n], from)
	case "cat":
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		os.Stdout.Write(b)
	case "listen":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("listening:", ln.Addr())
		ln.Close()
	case "accept":
		// Two connections: accept reports each peer, and getpeername agrees.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("listening:", ln.Addr())
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			raw, _ := c.(*net.TCPConn).SyscallConn()
			var peer string
			_ = raw.Control(func(fd uintptr) {
				sa, err := syscall.Getpeername(int(fd))
				if a, ok := sa.(*syscall.SockaddrInet4); ok && err == nil {
					peer = fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port)
				}
			})
			fmt.Printf("accepted from %s peer %s\n", c.RemoteAddr(), peer)
			c.Close()
		}
	case "many":
		var wg sync.WaitGroup
		errs := make(chan error, 500)
		for i := range 500 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.DialTimeout("tcp", args[0], 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close()
				fmt.Fprintf(conn, "n%d\n", i)
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil || line != fmt.Sprintf("n%d\n", i) {
					errs <- fmt.Errorf("conn %d: %q %v", i, line, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("all ok")
	}
	return 0
}

func errName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return "ECONNREFUSED"
		case syscall.ENETUNREACH:
			return "ENETUNREACH"
		case syscall.ETIMEDOUT:
			return "ETIMEDOUT"
		}
	}
	return err.Error()
}

// fakePod stands in for the sidecar: "remote" addresses of the test network map to local
// servers, as the pod would reach them.
type fakePod struct {
	t      *testing.T
	routes map[string]string // remote address -> local address
	mu     sync.Mutex
	dials  []string
}

func (p *fakePod) dial(ctx context.Context, network, address string) (Conn, error) {
	p.mu.Lock()
	p.dials = append(p.dials, network+" "+address)
	p.mu.Unlock()
	local, ok := p.routes[network+" "+address]
	if !ok {
		return nil, fmt.Errorf("dial %s: %w", address, syscall.ECONNREFUSED)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, local)
	if err != nil {
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		return tcp, nil
	}
	return udpConn{conn}, nil
}

type udpConn struct{ net.Conn }

func (udpConn) CloseWrite() error { return nil }

func newTestSupervisor(t *testing.T, cfg Config) *Supervisor {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Skipf("layer unavailable here: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runUnder runs the test binary's child scenario under s and returns its stdout.
func runUnder(t *testing.T, s *Supervisor, scenario string, args ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := s.Command(append([]string{self}, args...), os.Environ(), []string{"LAYER_TEST_CHILD=" + scenario})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	out, err := cmd.Output()
	close(done)
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", scenario, err, out, stderr.String())
	}
	return string(out)
}

func TestConnectGoesThroughThePod(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{"tcp 198.18.7.1:80": testnet.TCPEcho(t)}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	out := runUnder(t, s, "tcp", "198.18.7.1:80")
	if !strings.Contains(out, "reply: hello") || !strings.Contains(out, "peer: 198.18.7.1:80") {
		t.Fatalf("got %q", out)
	}
}

func TestConnectOfAnIPv6Socket(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{"tcp 198.18.7.5:80": testnet.TCPEcho(t)}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	out := runUnder(t, s, "tcp6", "[::ffff:198.18.7.5]:80")
	if !strings.Contains(out, "reply: hello") || !strings.Contains(out, "peer: [::ffff:198.18.7.5]:80") {
		t.Fatalf("got %q", out)
	}
}

func TestConnectRefusedInThePodIsRefusedLocally(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	if out := runUnder(t, s, "tcp", "198.18.7.2:81"); !strings.Contains(out, "error: ECONNREFUSED") {
		t.Fatalf("got %q", out)
	}
}

func TestLoopbackAndLocalDestinationsStayLocal(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{}}
	var out Outgoing
	if err := out.AddLocal(context.Background(), "198.18.9.0/24"); err != nil {
		t.Fatal(err)
	}
	s := newTestSupervisor(t, Config{Dial: pod.dial, Outgoing: out})
	if got := runUnder(t, s, "tcp", testnet.TCPEcho(t)); !strings.Contains(got, "reply: hello") {
		t.Fatalf("loopback: got %q", got)
	}
	// Nothing listens on 198.18.9.9 locally (no route): the local kernel answers, not the pod.
	_ = runUnder(t, s, "tcp", "198.18.9.9:1")
	if len(pod.dials) != 0 {
		t.Fatalf("dialed through the pod: %v", pod.dials)
	}
}

func TestManyConcurrentConnections(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{"tcp 198.18.7.3:80": testnet.TCPEcho(t)}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	if out := runUnder(t, s, "many", "198.18.7.3:80"); !strings.Contains(out, "all ok") {
		t.Fatalf("got %q", out)
	}
}

func TestUDP(t *testing.T) {
	echo := testnet.UDPEcho(t, "echo ")
	pod := &fakePod{t: t, routes: map[string]string{"udp 198.18.7.4:53": echo}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	if out := runUnder(t, s, "udp", "198.18.7.4:53"); !strings.Contains(out, "reply: echo ping") {
		t.Fatalf("connected: got %q", out)
	}
	if out := runUnder(t, s, "udp-unconnected", "198.18.7.4:53"); !strings.Contains(out, "reply: echo ping from 198.18.7.4:53") {
		t.Fatalf("unconnected: got %q", out)
	}
}

func TestServedFiles(t *testing.T) {
	s := newTestSupervisor(t, Config{Files: map[string][]byte{"/etc/resolv.conf": []byte("nameserver 198.19.0.10\n")}})
	if out := runUnder(t, s, "cat", "/etc/resolv.conf"); out != "nameserver 198.19.0.10\n" {
		t.Fatalf("got %q", out)
	}
	local, _ := os.ReadFile("/etc/hostname")
	if out := runUnder(t, s, "cat", "/etc/hostname"); out != string(local) {
		t.Fatalf("a local file changed: %q", out)
	}
	// Mounted, not served from trapped opens, wherever user namespaces work.
	if !s.userns && os.Getenv("LAYER_TEST_REQUIRE_USERNS") != "" {
		t.Fatal("user namespaces are unavailable")
	}
	if out := runUnder(t, s, "mountpoint", "/etc/resolv.conf"); s.userns && out != "mounted\n" {
		t.Fatalf("/etc/resolv.conf: %s", out)
	}
}

// Without user namespaces the helper traps opens and the supervisor serves the same files.
func TestServedFilesWithoutUserNamespaces(t *testing.T) {
	s := newTestSupervisor(t, Config{Files: map[string][]byte{"/etc/resolv.conf": []byte("nameserver 198.19.0.11\n")}})
	s.userns = false
	if out := runUnder(t, s, "cat", "/etc/resolv.conf"); out != "nameserver 198.19.0.11\n" {
		t.Fatalf("got %q", out)
	}
}

func TestListenIsAnnounced(t *testing.T) {
	events := make(chan ListenEvent, 1)
	s := newTestSupervisor(t, Config{OnListen: func(ev ListenEvent) { events <- ev }})
	out := runUnder(t, s, "listen")
	select {
	case ev := <-events:
		if !strings.Contains(out, ev.Addr.String()) {
			t.Fatalf("event %v, program said %q", ev, out)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no listen event; program said %q", out)
	}
}

// A connection the plugin announced is accepted as coming from the pod's client; others keep
// their real peer.
func TestAcceptReportsTheArrivalsClient(t *testing.T) {
	s := newTestSupervisor(t, Config{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("198.18.9.9:4242")
	// An arrival announced from the start, for a connection that never comes: the supervisor
	// then takes every accept of the program from its first. Without it, the program's first
	// accept can be passed to the kernel while nothing is announced, and, run only once the
	// thread is scheduled again, take the announced connection itself (seen once in 25 runs).
	defer s.ExpectArrival(netip.MustParseAddrPort("127.0.0.1:1"), client)()
	child := startUnder(t, s, []string{self}, "LAYER_TEST_CHILD=accept")
	line := child.next(5 * time.Second)
	if !strings.HasPrefix(line, "listening: ") {
		t.Fatalf("the program did not listen: %q", line)
	}
	addr := strings.TrimPrefix(line, "listening: ")

	// The announced connection: bound first, announced, then connected. The second, plain one
	// arrives while the first is still announced, so the supervisor accepts it too.
	var arrived func()
	announced := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		return raw.Control(func(fd uintptr) {
			if err := syscall.Bind(int(fd), &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				t.Error(err)
				return
			}
			sa, _ := syscall.Getsockname(int(fd))
			a := sa.(*syscall.SockaddrInet4)
			arrived = s.ExpectArrival(netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), client)
		})
	}}
	first, err := announced.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	defer arrived()
	if line := child.next(5 * time.Second); line != "accepted from 198.18.9.9:4242 peer 198.18.9.9:4242" {
		t.Fatalf("announced connection: %q, want the client's address from accept and getpeername", line)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	want := second.LocalAddr().String()
	if line := child.next(5 * time.Second); line != "accepted from "+want+" peer "+want {
		t.Fatalf("plain connection: %q, want its real address %s", line, want)
	}
}
