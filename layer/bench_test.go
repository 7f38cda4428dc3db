//go:build linux

package layer

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

// The benchmarks run a child program with and without the layer and report what the child
// timed itself (ns per operation), so that process start-up is not in the figure. Compare the
// two lines of one run: this is a shared machine.

func init() {
	childScenarios["openstat"] = childOpenStat
	childScenarios["loopconnect"] = childLoopConnect
	childScenarios["trapped"] = childTrapped
}

// childTrapped makes args[0] connects of a unix socket to a path that does not exist: trapped,
// and passed back to the kernel at once, so the difference with and without the layer is the
// notification round trip.
func childTrapped(args []string) int {
	n, _ := strconv.Atoi(args[0])
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return 1
	}
	addr := &unix.SockaddrUnix{Name: "/nonexistent/remocal-bench"}
	start := time.Now()
	for range n {
		_ = unix.Connect(fd, addr)
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(n))
	return 0
}

// childOpenStat opens, stats and closes each file of a directory args[1] times over.
func childOpenStat(args []string) int {
	rounds, _ := strconv.Atoi(args[1])
	entries, err := os.ReadDir(args[0])
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	start := time.Now()
	ops := 0
	for range rounds {
		for _, e := range entries {
			p := filepath.Join(args[0], e.Name())
			f, err := os.Open(p)
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			if _, err := f.Stat(); err != nil {
				return 1
			}
			f.Close()
			if _, err := os.Stat(p); err != nil {
				return 1
			}
			ops++
		}
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(ops))
	return 0
}

// childLoopConnect connects to args[0] on loopback args[1] times.
func childLoopConnect(args []string) int {
	n, _ := strconv.Atoi(args[1])
	start := time.Now()
	for range n {
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		c.Close()
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(n))
	return 0
}

func reportChild(b *testing.B, out string, metric string) {
	ns, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		b.Fatalf("child said %q", out)
	}
	b.ReportMetric(ns, metric)
}

func benchBoth(b *testing.B, s *Supervisor, scenario string, args []string, metric string) {
	self, _ := os.Executable()
	b.Run("direct", func(b *testing.B) {
		for range b.N {
			cmd := exec.Command(self, args...)
			cmd.Env = append(os.Environ(), "LAYER_TEST_CHILD="+scenario)
			out, err := cmd.Output()
			if err != nil {
				b.Fatal(err)
			}
			reportChild(b, string(out), metric)
		}
	})
	b.Run("layer", func(b *testing.B) {
		for range b.N {
			reportChild(b, runUnderB(b, s, scenario, args...), metric)
		}
	})
}

func runUnderB(b *testing.B, s *Supervisor, scenario string, args ...string) string {
	self, _ := os.Executable()
	cmd, err := s.Command(append([]string{self}, args...), os.Environ(), []string{"LAYER_TEST_CHILD=" + scenario})
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	return string(out)
}

// BenchmarkOpenStat: a syscall-heavy program (open, fstat, close, stat of 1,000 files) with and
// without the layer; target at most 1.10x.
func BenchmarkOpenStat(b *testing.B) {
	dir := b.TempDir()
	for i := range 1000 {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{Files: map[string][]byte{"/etc/resolv.conf": []byte("nameserver 198.19.0.10\n")}})
	if err != nil {
		b.Skip(err)
	}
	defer s.Close()
	benchBoth(b, s, "openstat", []string{dir, "20"}, "ns/file")
}

// BenchmarkNotification: the cost of one trapped syscall that the supervisor passes back to
// the kernel (layer minus direct is the round trip).
func BenchmarkNotification(b *testing.B) {
	s, err := New(Config{Dial: (&fakePod{}).dial})
	if err != nil {
		b.Skip(err)
	}
	defer s.Close()
	benchBoth(b, s, "trapped", []string{"20000"}, "ns/call")
}

// BenchmarkLoopbackConnect: connect to a loopback server, which the layer keeps local.
func BenchmarkLoopbackConnect(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	s, err := New(Config{Dial: (&fakePod{}).dial})
	if err != nil {
		b.Skip(err)
	}
	defer s.Close()
	benchBoth(b, s, "loopconnect", []string{ln.Addr().String(), "2000"}, "ns/connect")
}

func init() {
	childScenarios["eventloop-rate"] = childEventLoopRate
}

// childEventLoopRate is a single-threaded event loop that keeps args[1] new connections to
// args[0] in flight until args[2] have connected, closing each once connected, as
// redis-benchmark -k 0 does; it prints the nanoseconds per connection.
func childEventLoopRate(args []string) int {
	runtime.LockOSThread()
	dst := netip.MustParseAddrPort(args[0])
	inFlight, _ := strconv.Atoi(args[1])
	total, _ := strconv.Atoi(args[2])
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return 1
	}
	open := func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
			return err
		}
		return unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)})
	}
	start := time.Now()
	opened, connected := 0, 0
	for ; opened < min(inFlight, total); opened++ {
		if err := open(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	events := make([]unix.EpollEvent, inFlight)
	for connected < total {
		n, err := unix.EpollWait(ep, events, 10_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			fmt.Println("error: epoll_wait:", err)
			return 1
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); soerr != 0 {
				fmt.Println("error:", unix.Errno(soerr))
				return 1
			}
			unix.Close(fd)
			connected++
			if opened < total {
				if err := open(); err != nil {
					fmt.Println("error:", err)
					return 1
				}
				opened++
			}
		}
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(total))
	return 0
}

// BenchmarkEventLoopConnects: new connections per second of a single-threaded event loop
// with 16 in flight, through a pod whose dials take 2 ms (the redis-benchmark -c 16
// -k 0). Waiting for each dial in the connect call would bound it near 500/s.
func BenchmarkEventLoopConnects(b *testing.B) {
	echo := testnet.TCPEcho(b)
	pod := &fakePod{routes: map[string]string{"tcp 198.18.7.12:80": echo}}
	s, err := New(Config{Dial: slowPod(pod, 2*time.Millisecond)})
	if err != nil {
		b.Skip(err)
	}
	defer s.Close()
	for range b.N {
		out := runUnderB(b, s, "eventloop-rate", "198.18.7.12:80", "16", "1000")
		ns, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			b.Fatalf("child said %q", out)
		}
		b.ReportMetric(1e9/ns, "conn/s")
	}
}
