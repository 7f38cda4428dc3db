//go:build linux

package layer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

func init() {
	childScenarios["connect-signalled"] = childConnectSignalled
	childScenarios["recv-blocking"] = childRecvBlocking
}

// childRecvBlocking binds a UDP socket to args[0], sends a datagram to args[1] (through the
// pod), says so, and waits for a reply in a blocking recvfrom that asks for the source.
func childRecvBlocking(args []string) int {
	local, dst := netip.MustParseAddrPort(args[0]), netip.MustParseAddrPort(args[1])
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(local.Port()), Addr: local.Addr().As4()}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.Sendto(fd, []byte("ping"), 0, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("waiting")
	_, _, err = unix.Recvfrom(fd, make([]byte, 100), 0)
	fmt.Println("recvfrom:", err)
	return 0
}

// childConnectSignalled connects a blocking socket to args[0] while its thread gets SIGUSR1
// again and again, as a program with a signal handler (SA_RESTART, as Go's) may, and says how
// the connect ended.
func childConnectSignalled(args []string) int {
	dst := netip.MustParseAddrPort(args[0])
	signal.Notify(make(chan os.Signal, 1), unix.SIGUSR1)
	runtime.LockOSThread()
	pid, tid := unix.Getpid(), unix.Gettid()
	var done atomic.Bool
	go func() {
		for !done.Load() {
			_ = unix.Tgkill(pid, tid, unix.SIGUSR1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()})
	done.Store(true)
	if err != nil {
		fmt.Println("connect:", err)
		return 0
	}
	fmt.Println("connect: ok")
	return 0
}

// A signal that interrupts the program's thread while the pod dials for its connect does not
// make the supervisor dial again for the restarted call: the pod sees one connection, and the
// program a connected socket.
func TestSignalDuringRemoteConnectDialsOnce(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{"tcp 198.18.7.6:80": testnet.TCPEcho(t)}}
	slow := func(ctx context.Context, network, address string) (Conn, error) {
		conn, err := pod.dial(ctx, network, address)
		time.Sleep(300 * time.Millisecond) // long enough for a few signals
		return conn, err
	}
	s := newTestSupervisor(t, Config{Dial: slow})
	out := runUnder(t, s, "connect-signalled", "198.18.7.6:80")
	pod.mu.Lock()
	dials := len(pod.dials)
	pod.mu.Unlock()
	if strings.TrimSpace(out) != "connect: ok" || dials != 1 {
		t.Fatalf("the program said %q after %d dials, want a connected socket after one", out, dials)
	}
}

// A program killed while the supervisor receives for its blocking recvfrom leaves nothing
// behind: the supervisor stops waiting on its socket, which then closes.
func TestKilledInBlockingRecvfromFreesTheSocket(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	pod := &fakePod{t: t, routes: map[string]string{"udp 198.18.7.7:53": silent.LocalAddr().String()}}
	s := newTestSupervisor(t, Config{Dial: pod.dial})
	free, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := free.LocalAddr().String()
	free.Close()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := startUnder(t, s, []string{self, local, "198.18.7.7:53"}, "LAYER_TEST_CHILD=recv-blocking")
	if line := child.next(5 * time.Second); line != "waiting" {
		t.Fatalf("the program said %q", line)
	}
	time.Sleep(200 * time.Millisecond) // the supervisor receives for it by now
	_ = child.cmd.Process.Kill()
	_ = child.cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for {
		conn, err := net.ListenPacket("udp4", local)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead program's socket %s is still open: %v", local, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
