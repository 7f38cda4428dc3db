//go:build linux

package layer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

func init() {
	childScenarios["accept-signalled"] = childAcceptSignalled
	childScenarios["recv-signalled"] = childRecvSignalled
	childScenarios["connect-interrupted"] = childConnectInterrupted
}

// signalOwnThread handles SIGINT (Go's handler, SA_RESTART), reports it on stdout, and sends
// SIGINT to the calling thread after a while, when it waits in a trapped call the supervisor
// has taken. The program waits for the report with handled before it exits.
func signalOwnThread() (handled func()) {
	got := make(chan os.Signal, 1)
	signal.Notify(got, os.Interrupt)
	reported := make(chan struct{})
	go func() {
		fmt.Println("handler:", <-got)
		close(reported)
	}()
	runtime.LockOSThread()
	pid, tid := unix.Getpid(), unix.Gettid()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = unix.Tgkill(pid, tid, unix.SIGINT)
	}()
	return func() {
		select {
		case <-reported:
		case <-time.After(5 * time.Second):
		}
	}
}

// childAcceptSignalled listens on loopback, says where, and accepts in a blocking accept that
// asks for the peer, while its thread gets SIGINT; it says how the accept ended.
func childAcceptSignalled([]string) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.Listen(fd, 8); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	sa, _ := unix.Getsockname(fd)
	fmt.Println("listening:", sa.(*unix.SockaddrInet4).Port)
	handled := signalOwnThread()
	_, _, err = unix.Accept(fd)
	fmt.Println("accept:", err)
	handled()
	return 0
}

// childRecvSignalled binds a UDP socket with a 20 s receive timeout, sends a datagram to
// args[0] (through the pod), and waits for a reply in a blocking recvfrom that asks for the
// source, while its thread gets SIGINT; it says how the recvfrom ended.
func childRecvSignalled(args []string) int {
	dst := netip.MustParseAddrPort(args[0])
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 20}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.Sendto(fd, []byte("ping"), 0, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("waiting")
	handled := signalOwnThread()
	_, _, err = unix.Recvfrom(fd, make([]byte, 100), 0)
	fmt.Println("recvfrom:", err)
	handled()
	return 0
}

// childConnectInterrupted connects a blocking socket to args[0] (through the pod) while its
// thread gets SIGINT, and says how the connect ended.
func childConnectInterrupted(args []string) int {
	dst := netip.MustParseAddrPort(args[0])
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	handled := signalOwnThread()
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()})
	fmt.Println("connect:", err)
	handled()
	return 0
}

// slowDial is pod's dial, which takes a while for TCP.
func slowDial(pod *fakePod, delay time.Duration) DialFunc {
	return func(ctx context.Context, network, address string) (Conn, error) {
		if network == "tcp" {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return pod.dial(ctx, network, address)
	}
}

// childOutput is the stdout of a program run under the layer, line by line.
type childOutput struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
}

// startUnder starts argv under s; the test's end kills it.
func startUnder(t *testing.T, s *Supervisor, argv []string, programEnv ...string) *childOutput {
	t.Helper()
	cmd, err := s.Command(argv, os.Environ(), programEnv)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childOutput{t: t, cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				_, _ = io.Copy(io.Discard, r)
				return
			}
			c.lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// expect waits up to within for the program to say each of want, in any order, and fails
// the test with what it said instead.
func (c *childOutput) expect(within time.Duration, want ...string) {
	c.t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	var said []string
	timeout := time.After(within)
	for len(missing) > 0 {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("the program ended having said %q; want %q", said, want)
			}
			said = append(said, line)
			delete(missing, line)
		case <-timeout:
			c.t.Fatalf("after %v the program had said %q; want %q", within, said, want)
		}
	}
}

// next is the program's next line.
func (c *childOutput) next(within time.Duration) string {
	c.t.Helper()
	select {
	case line := <-c.lines:
		return line
	case <-time.After(within):
		c.t.Fatalf("the program said nothing for %v", within)
		return ""
	}
}

// A signal to a thread waiting in a blocking accept the supervisor makes for it is handled at
// once: the handler runs, and as Go's handler asks (SA_RESTART) the accept goes on waiting,
// to take the next client.
func TestSignalDuringBlockingAcceptRunsTheHandler(t *testing.T) {
	s := newTestSupervisor(t, Config{})
	// An announced arrival makes the supervisor take the program's accepts.
	defer s.ExpectArrival(netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("198.18.9.9:4242"))()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := startUnder(t, s, []string{self}, "LAYER_TEST_CHILD=accept-signalled")
	port := strings.TrimPrefix(child.next(10*time.Second), "listening: ")
	child.expect(2*time.Second, "handler: interrupt")
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	child.expect(5*time.Second, "accept: <nil>")
}

// A signal to a thread waiting in a blocking recvfrom with a receive timeout ends the call
// with EINTR, as the kernel's timed socket waits do, once the handler has run.
func TestSignalDuringBlockingRecvfromInterruptsIt(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	pod := &fakePod{t: t, routes: map[string]string{"udp 198.18.7.8:53": silent.LocalAddr().String()}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := startUnder(t, s, []string{self, "198.18.7.8:53"}, "LAYER_TEST_CHILD=recv-signalled")
	if line := child.next(10 * time.Second); line != "waiting" {
		t.Fatalf("the program said %q", line)
	}
	child.expect(2*time.Second, "handler: interrupt", "recvfrom: interrupted system call")
}

// A signal to a thread waiting for a remote connect runs its handler at once; as Go's handler
// asks (SA_RESTART), the connect then goes on waiting for the same dial, and connects.
func TestSignalDuringRemoteConnectRunsTheHandler(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{"tcp 198.18.7.10:80": testnet.TCPEcho(t)}}
	s := newTestSupervisor(t, Config{Dial: slowDial(pod, 2*time.Second)})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := startUnder(t, s, []string{self, "198.18.7.10:80"}, "LAYER_TEST_CHILD=connect-interrupted")
	child.expect(1500*time.Millisecond, "handler: interrupt")
	child.expect(5*time.Second, "connect: <nil>")
	pod.mu.Lock()
	defer pod.mu.Unlock()
	if len(pod.dials) != 1 {
		t.Fatalf("dialed %q, want once", pod.dials)
	}
}

// pythonUnderTest is a Python interpreter's path, or skips the test.
func pythonUnderTest(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	// Past any launcher script (pyenv's shims), so that the signal reaches Python itself.
	out, err := exec.Command(path, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skipf("python3: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// pythonInterrupted is the end of the Python scripts below: it calls the blocking call in
// their last line with a SIGINT handler of its own (no SA_RESTART, as every Python handler).
const pythonInterrupted = `
import signal, socket, sys
class Interrupted(Exception):
    pass
def handler(signum, frame):
    print("handler ran", flush=True)
    raise Interrupted()
signal.signal(signal.SIGINT, handler)
try:
    CALL
    print("call returned", flush=True)
except Interrupted:
    print("call interrupted", flush=True)
`

// Ctrl-C reaches a Python program blocked in accept, recvfrom or a remote connect under the
// layer: its handler runs at once, which takes an EINTR from the call.
func TestSIGINTInterruptsPythonsBlockingCalls(t *testing.T) {
	python := pythonUnderTest(t)
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	pod := &fakePod{t: t, routes: map[string]string{"udp 198.18.7.9:53": silent.LocalAddr().String()}}
	pod.routes["tcp 198.18.7.11:80"] = testnet.TCPEcho(t)
	s := newTestSupervisor(t, Config{Dial: slowDial(pod, 10*time.Second)})
	defer s.ExpectArrival(netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("198.18.9.9:4242"))()
	for _, tc := range []struct{ name, setup, call string }{
		{"accept", `s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()`, "s.accept()"},
		{"recvfrom", `s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"ping", ("198.18.7.9", 53))`, "s.recvfrom(100)"},
		{"connect", `s = socket.socket()`, `s.connect(("198.18.7.11", 80))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "import socket\n" + tc.setup + "\nprint(\"waiting\", flush=True)\n" + strings.Replace(pythonInterrupted, "CALL", tc.call, 1)
			child := startUnder(t, s, []string{python, "-c", script})
			if line := child.next(10 * time.Second); line != "waiting" {
				t.Fatalf("the program said %q", line)
			}
			time.Sleep(300 * time.Millisecond) // the supervisor waits for it by now
			if err := child.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			child.expect(2*time.Second, "handler ran", "call interrupted")
		})
	}
}
