//go:build linux

package redirect

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// testNet is two network namespaces, a "pod" and a "client", joined by a veth pair on the test
// network 198.18.250.0/30. The namespaces are held by descriptors only: nothing is mounted (ip
// netns add would turn the machine's /run/netns into a bind mount), and closing the descriptors
// at the end of the test removes them, with the veth pair.
type testNet struct {
	podFD, clientFD int
}

const podAddr = "198.18.250.1"

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	n := &testNet{podFD: newNetns(t), clientFD: newNetns(t)}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	podIf, clientIf := "rmcrt"+suffix, "rmcrtc"+suffix
	run(t, "ip", "link", "add", podIf, "type", "veth", "peer", "name", clientIf)
	run(t, "ip", "link", "set", podIf, "netns", fdPath(n.podFD))
	run(t, "ip", "link", "set", clientIf, "netns", fdPath(n.clientFD))
	inNS := func(fd int, args ...string) {
		run(t, append([]string{"nsenter", "--net=" + fdPath(fd), "ip"}, args...)...)
	}
	inNS(n.podFD, "addr", "add", podAddr+"/30", "dev", podIf)
	inNS(n.clientFD, "addr", "add", "198.18.250.2/30", "dev", clientIf)
	for fd, link := range map[int]string{n.podFD: podIf, n.clientFD: clientIf} {
		inNS(fd, "link", "set", "lo", "up")
		inNS(fd, "link", "set", link, "up")
	}
	return n
}

// beyondAddr is a host behind the pod, which routes for the client to it.
const beyondAddr = "198.18.250.6"

// addBeyond puts a third namespace behind the pod (198.18.250.4/30), makes the pod a router to
// it, and returns its descriptor.
func (n *testNet) addBeyond(t *testing.T) int {
	t.Helper()
	beyond := newNetns(t)
	suffix := strconv.Itoa(os.Getpid() % 100000)
	podIf, beyondIf := "rmcrb"+suffix, "rmcrbb"+suffix
	run(t, "ip", "link", "add", podIf, "type", "veth", "peer", "name", beyondIf)
	run(t, "ip", "link", "set", podIf, "netns", fdPath(n.podFD))
	run(t, "ip", "link", "set", beyondIf, "netns", fdPath(beyond))
	inNS := func(fd int, args ...string) {
		run(t, append([]string{"nsenter", "--net=" + fdPath(fd)}, args...)...)
	}
	inNS(n.podFD, "ip", "addr", "add", "198.18.250.5/30", "dev", podIf)
	inNS(n.podFD, "ip", "link", "set", podIf, "up")
	inNS(n.podFD, "sh", "-c", "echo 1 >/proc/sys/net/ipv4/ip_forward")
	inNS(beyond, "ip", "addr", "add", beyondAddr+"/30", "dev", beyondIf)
	inNS(beyond, "ip", "link", "set", beyondIf, "up")
	inNS(beyond, "ip", "route", "add", "default", "via", "198.18.250.5")
	inNS(n.clientFD, "ip", "route", "add", "198.18.250.4/30", "via", podAddr)
	return beyond
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// fdPath names a descriptor of this process for other programs.
func fdPath(fd int) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd) }

// newNetns makes a network namespace and returns a descriptor that keeps it alive until the
// test ends.
func newNetns(t *testing.T) int {
	t.Helper()
	type result struct {
		fd  int
		err error
	}
	done := make(chan result)
	go func() {
		// The thread is never unlocked: it ends with this goroutine rather than go back to the
		// runtime in another namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{-1, err}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		done <- result{fd, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("new network namespace: %v", r.err)
	}
	t.Cleanup(func() { unix.Close(r.fd) })
	return r.fd
}

// in runs f on a thread in the namespace of fd. Sockets made there stay in it.
func in(t *testing.T, fd int, f func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked, as in newNetns
		err := unix.Setns(fd, unix.CLONE_NEWNET)
		if err == nil {
			f()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// serve answers each connection with one line made by answer.
func serve(t *testing.T, ln net.Listener, answer func(*net.TCPConn) string) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, answer(c.(*net.TCPConn)))
			c.Close()
		}
	}()
}

func (n *testNet) ask(t *testing.T, addr string) string {
	t.Helper()
	var line string
	in(t, n.clientFD, func() {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			line = "dial: " + err.Error()
			return
		}
		defer c.Close()
		line, _ = bufio.NewReader(c).ReadString('\n')
	})
	return strings.TrimSpace(line)
}

// serveAppAndSidecar listens in the pod on 8000 as the app, answering "app", and on 8001 as the
// sidecar, answering "sidecar" and the original destination.
func (n *testNet) serveAppAndSidecar(t *testing.T) {
	t.Helper()
	in(t, n.podFD, func() {
		app, err := net.Listen("tcp", ":8000")
		if err != nil {
			t.Error(err)
			return
		}
		serve(t, app, func(*net.TCPConn) string { return "app" })
		sidecar, err := net.Listen("tcp", ":8001")
		if err != nil {
			t.Error(err)
			return
		}
		serve(t, sidecar, func(c *net.TCPConn) string {
			dst, err := OriginalDst(c)
			if err != nil {
				return err.Error()
			}
			return "sidecar " + dst.String()
		})
	})
}

func TestRedirectToTheSidecarAndBack(t *testing.T) {
	n := newTestNet(t)
	n.serveAppAndSidecar(t)
	opt := nftables.WithNetNSFd(n.podFD)
	table, err := Open("test", "", opt)
	if err != nil {
		t.Fatal(err)
	}
	target := podAddr + ":8000"
	if got := n.ask(t, target); got != "app" {
		t.Fatalf("before the redirect: %q", got)
	}
	if err := table.Redirect(8000, 8001); err != nil {
		t.Fatal(err)
	}
	if err := table.Redirect(8000, 8001); err == nil {
		t.Fatal("a port was redirected twice")
	}
	if got := n.ask(t, target); got != "sidecar "+target {
		t.Fatalf("redirected: %q", got)
	}
	if err := table.Remove(8000); err != nil {
		t.Fatal(err)
	}
	if got := n.ask(t, target); got != "app" {
		t.Fatalf("after the redirect: %q", got)
	}
	if err := table.Redirect(8000, 8001); err != nil {
		t.Fatalf("redirect again: %v", err)
	}
	names, err := Tables(opt)
	if err != nil || !slices.Equal(names, []string{"remocal_test"}) {
		t.Fatalf("tables = %v, %v", names, err)
	}
	if err := table.Close(); err != nil {
		t.Fatal(err)
	}
	if got := n.ask(t, target); got != "app" {
		t.Fatalf("after the table is gone: %q", got)
	}
	if names, err := Tables(opt); err != nil || len(names) != 0 {
		t.Fatalf("tables after Close = %v, %v", names, err)
	}
}

// A sidecar that died left its table: another one lists and removes it.
func TestLeftoversOfADeadSidecarAreRemoved(t *testing.T) {
	n := newTestNet(t)
	opt := nftables.WithNetNSFd(n.podFD)
	dead, err := Open("dead", "", opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Redirect(80, 8001); err != nil {
		t.Fatal(err)
	}
	live, err := Open("live", "", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := dead.Redirect(8443, 8001); err != nil {
		t.Fatal(err)
	}
	if info, err := Inspect(dead.Name(), opt); err != nil || !slices.Equal(info.Ports, []uint16{80, 8443}) {
		t.Fatalf("Inspect(%s) = %+v, %v; want ports [80 8443]", dead.Name(), info, err)
	}
	if info, err := Inspect(live.Name(), opt); err != nil || len(info.Ports) != 0 {
		t.Fatalf("Inspect(%s) = %+v, %v; want no port", live.Name(), info, err)
	}
	names, err := Tables(opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name != live.Name() {
			if err := DeleteTable(name, opt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if names, _ := Tables(opt); !slices.Equal(names, []string{"remocal_live"}) {
		t.Fatalf("tables = %v", names)
	}
	if err := DeleteTable("filter", opt); err == nil {
		t.Fatal("deleted a table that is not ours")
	}
	// Reopening a table by the same owner starts empty.
	again, err := Open("live", "", opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Redirect(80, 8001); err != nil {
		t.Fatalf("reopened table: %v", err)
	}
}

// The sidecar reaches the app from the client's address, and the app's answers come back to
// the sidecar, not to the client.
func TestDialFromTheClientsAddress(t *testing.T) {
	n := newTestNet(t)
	const client = "198.18.250.2:40000" // the client namespace's address: not the pod's
	in(t, n.podFD, func() {
		app, err := net.Listen("tcp", ":8000")
		if err != nil {
			t.Error(err)
			return
		}
		serve(t, app, func(c *net.TCPConn) string { return "app sees " + c.RemoteAddr().(*net.TCPAddr).IP.String() })
	})
	dialFrom := func() (string, error) {
		var line string
		var err error
		in(t, n.podFD, func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			var c *net.TCPConn
			if c, err = DialFrom(ctx, netip.MustParseAddrPort(client), netip.MustParseAddrPort(podAddr+":8000")); err != nil {
				return
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
		})
		return strings.TrimSpace(line), err
	}
	// Without the marks, the app's answer leaves for the client, who never asked.
	if line, err := dialFrom(); err == nil {
		t.Fatalf("answered %q without the marks: the test proves nothing", line)
	}
	table, err := Open("origsrc", "", nftables.WithNetNSFd(n.podFD))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	if err := table.MarkAnswers(); err != nil {
		t.Fatal(err)
	}
	if err := DeliverMarkedLocally(n.podFD); err != nil {
		t.Fatal(err)
	}
	if err := DeliverMarkedLocally(n.podFD); err != nil {
		t.Fatalf("a second sidecar's set-up: %v", err)
	}
	for range 3 {
		if line, err := dialFrom(); err != nil || line != "app sees 198.18.250.2" {
			t.Fatalf("answered %q, %v; want the app to see the client's address", line, err)
		}
	}
}

// A pod that routes (or one on the node's network) sees connections for other hosts pass
// through its prerouting hook: only those for the pod itself are redirected.
func TestOnlyConnectionsToThePodAreRedirected(t *testing.T) {
	n := newTestNet(t)
	n.serveAppAndSidecar(t)
	beyond := n.addBeyond(t)
	in(t, beyond, func() {
		ln, err := net.Listen("tcp", ":8000")
		if err != nil {
			t.Error(err)
			return
		}
		serve(t, ln, func(*net.TCPConn) string { return "beyond" })
	})
	table, err := Open("fib", "", nftables.WithNetNSFd(n.podFD))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	if err := table.Redirect(8000, 8001); err != nil {
		t.Fatal(err)
	}
	if got, want := n.ask(t, podAddr+":8000"), "sidecar "+podAddr+":8000"; got != want {
		t.Fatalf("to the pod: %q, want %q", got, want)
	}
	if got := n.ask(t, beyondAddr+":8000"); got != "beyond" {
		t.Fatalf("through the pod: %q, want the host behind it to answer", got)
	}
}
