//go:build linux

package layer

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

func init() {
	childScenarios["eventloop"] = childEventLoop
}

// childEventLoop is a single-threaded event loop, as redis clients, Node.js or nginx are: it
// opens args[1] non-blocking connections to args[0] at once, waits for them with epoll, and
// says how each connect call, the state while in progress and each connection went:
//
//	connect: <errno of each call, counted>
//	slowest call: <ms>
//	in progress: again=<errno> write=<errno> so_error=<errno> getpeername=<errno>
//	done: <outcome, counted> in <ms>
//
// An outcome is "ok" (the connection echoed a line back, and getpeername is args[0]) or the
// epoll events and SO_ERROR of a failed one.
func childEventLoop(args []string) int {
	runtime.LockOSThread()
	dst := netip.MustParseAddrPort(args[0])
	n, _ := strconv.Atoi(args[1])
	family := unix.AF_INET
	if dst.Addr().Is6() { // an IPv6 socket, as dual-stack programs open even for IPv4
		family = unix.AF_INET6
	}
	sa := unixSockaddr(dst, uint16(family))
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	calls := map[string]int{}
	var slowest time.Duration
	start := time.Now()
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fds[i] = fd
		t := time.Now()
		err = unix.Connect(fd, sa)
		slowest = max(slowest, time.Since(t))
		calls[errnoText(err)]++
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(i)}); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	fmt.Println("connect:", counted(calls))
	fmt.Println("slowest call:", slowest.Milliseconds())

	// The first socket, while its dial goes on (the dials take far longer than this).
	again := unix.Connect(fds[0], sa)
	_, werr := unix.Write(fds[0], []byte("early"))
	soerr, _ := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_ERROR)
	_, perr := unix.Getpeername(fds[0])
	fmt.Printf("in progress: again=%s write=%s so_error=%s getpeername=%s\n", errnoText(again), errnoText(werr), errnoText(unix.Errno(soerr)), errnoText(perr))

	outcomes := map[string]int{}
	events := make([]unix.EpollEvent, n)
	for left := n; left > 0; {
		m, err := unix.EpollWait(ep, events, 10_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			fmt.Println("error: epoll_wait:", err, m)
			return 1
		}
		for _, ev := range events[:m] {
			fd := fds[ev.Fd]
			_ = unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
			left--
			soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err != nil || soerr != 0 {
				// Read once: a second read is the kernel's (nothing pending).
				soerr2, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
				outcomes[fmt.Sprintf("events=%s so_error=%s then %s", epollText(ev.Events), errnoText(unix.Errno(soerr)), errnoText(unix.Errno(soerr2)))]++
				continue
			}
			outcomes[echoed(fd, dst, int(ev.Fd))]++
		}
	}
	fmt.Printf("done: %s in %d\n", counted(outcomes), time.Since(start).Milliseconds())
	return 0
}

// echoed sends a line on the connected socket fd and reads it back.
func echoed(fd int, dst netip.AddrPort, i int) string {
	peer, err := unix.Getpeername(fd)
	if got, ok := sockaddrOf(peer); err != nil || !ok || got != dst {
		return fmt.Sprintf("getpeername %v %v", peer, err)
	}
	line := fmt.Sprintf("n%d\n", i)
	if _, err := unix.Write(fd, []byte(line)); err != nil {
		return "write " + errnoText(err)
	}
	buf := make([]byte, 64)
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(p, 5000); err != nil {
		return "poll " + errnoText(err)
	}
	got, err := unix.Read(fd, buf)
	if err != nil || string(buf[:got]) != line {
		return fmt.Sprintf("read %q %v", buf[:max(got, 0)], err)
	}
	return "ok"
}

func errnoText(err error) string {
	if err == nil {
		return "0"
	}
	if errno, ok := err.(unix.Errno); ok {
		if errno == 0 {
			return "0"
		}
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func epollText(ev uint32) string {
	var names []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{unix.EPOLLIN, "IN"}, {unix.EPOLLOUT, "OUT"}, {unix.EPOLLERR, "ERR"}, {unix.EPOLLHUP, "HUP"}} {
		if ev&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, "|")
}

// counted writes counts as "a x3, b x1", in a stable order.
func counted(counts map[string]int) string {
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s x%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// slowPod is a pod whose every dial takes delay, as a link of that round trip would.
func slowPod(pod *fakePod, delay time.Duration) DialFunc {
	return func(ctx context.Context, network, address string) (Conn, error) {
		time.Sleep(delay)
		return pod.dial(ctx, network, address)
	}
}

// eventLoopResult is what childEventLoop said.
type eventLoopResult struct {
	connect, inProgress, done string
	slowest, total            time.Duration
}

func runEventLoop(t testing.TB, s *Supervisor, dst string, n int) eventLoopResult {
	t.Helper()
	var out string
	if b, ok := t.(*testing.B); ok {
		out = runUnderB(b, s, "eventloop", dst, strconv.Itoa(n))
	} else {
		out = runUnder(t.(*testing.T), s, "eventloop", dst, strconv.Itoa(n))
	}
	var r eventLoopResult
	lines := bufio.NewScanner(strings.NewReader(out))
	for lines.Scan() {
		key, value, _ := strings.Cut(lines.Text(), ": ")
		switch key {
		case "connect":
			r.connect = value
		case "slowest call":
			ms, _ := strconv.Atoi(value)
			r.slowest = time.Duration(ms) * time.Millisecond
		case "in progress":
			r.inProgress = value
		case "done":
			outcome, ms, _ := strings.Cut(value, " in ")
			r.done = outcome
			total, _ := strconv.Atoi(ms)
			r.total = time.Duration(total) * time.Millisecond
		}
	}
	if r.done == "" {
		t.Fatalf("the event loop said %q", out)
	}
	return r
}

// A single-threaded event loop opening many connections at once is not stalled by the pod's
// dials: each connect returns EINPROGRESS at once, the socket is really in progress meanwhile,
// and all connect in about one dial's time, not one after another.
func TestEventLoopConnectsWithoutWaitingForTheDial(t *testing.T) {
	const n, dial = 16, 100 * time.Millisecond
	pod := &fakePod{t: t, routes: map[string]string{"tcp 198.18.7.8:80": testnet.TCPEcho(t)}}
	s := newTestSupervisor(t, Config{Dial: slowPod(pod, dial)})
	r := runEventLoop(t, s, "198.18.7.8:80", n)
	if r.connect != "EINPROGRESS x16" || r.slowest >= dial/2 {
		t.Errorf("connect calls: %s, the slowest %v; want EINPROGRESS at once, far under the dial's %v", r.connect, r.slowest, dial)
	}
	if r.inProgress != "again=EALREADY write=EAGAIN so_error=0 getpeername=ENOTCONN" {
		t.Errorf("while in progress: %s; want the kernel's answers for a connect under way", r.inProgress)
	}
	if r.done != "ok x16" || r.total >= n*dial/2 {
		t.Errorf("connections: %s in %v; want all ok in about one dial (%v), far under %v", r.done, r.total, dial, n*dial)
	}
}

// The same for an IPv6 socket, to an IPv6 destination and to a v4-mapped one.
func TestEventLoopOfIPv6Sockets(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{
		"tcp [2001:2::7]:80": testnet.TCPEcho(t),
		"tcp 198.18.7.11:80": testnet.TCPEcho(t),
	}}
	s := newTestSupervisor(t, Config{Dial: slowPod(pod, 20*time.Millisecond)})
	for _, dst := range []string{"[2001:2::7]:80", "[::ffff:198.18.7.11]:80"} {
		if r := runEventLoop(t, s, dst, 4); r.connect != "EINPROGRESS x4" || r.done != "ok x4" {
			t.Errorf("%s: connect: %s; done: %s", dst, r.connect, r.done)
		}
	}
}

// A dial the pod refuses shows as the kernel's refusal: EPOLLERR, and SO_ERROR ECONNREFUSED,
// read once.
func TestEventLoopSeesTheRefusal(t *testing.T) {
	pod := &fakePod{t: t, routes: map[string]string{}}
	s := newTestSupervisor(t, Config{Dial: slowPod(pod, 20*time.Millisecond)})
	r := runEventLoop(t, s, "198.18.7.9:81", 4)
	if r.connect != "EINPROGRESS x4" || !strings.HasSuffix(r.done, "so_error=ECONNREFUSED then 0 x4") || !strings.Contains(r.done, "ERR") {
		t.Fatalf("connect: %s; done: %s; want EINPROGRESS, then EPOLLERR and ECONNREFUSED", r.connect, r.done)
	}
}

// Go's dialer connects non-blocking: it gets the pod's own errno for each failure.
func TestNonBlockingConnectGetsThePodsErrno(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		t.Run(unix.ErrnoName(errno), func(t *testing.T) {
			dial := func(ctx context.Context, network, address string) (Conn, error) {
				return nil, fmt.Errorf("dial %s: %w", address, errno)
			}
			s := newTestSupervisor(t, Config{Dial: dial})
			out := runUnder(t, s, "tcp", "198.18.7.10:80")
			if want := errName(errno); !strings.HasPrefix(out, "error: ") || !strings.Contains(out, want) {
				t.Fatalf("got %q, want the error %q", out, want)
			}
		})
	}
}
