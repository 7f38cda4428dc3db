//go:build linux

package redirect

import (
	"bufio"
	"fmt"
	"net"
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
// network 198.18.250.0/30.
type testNet struct {
	pod, client string
	podFD       int
}

const podAddr = "198.18.250.1"

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	suffix := strconv.Itoa(os.Getpid())
	n := &testNet{pod: "remocal-rt-pod-" + suffix, client: "remocal-rt-cli-" + suffix}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", n.pod).Run()
		_ = exec.Command("ip", "netns", "del", n.client).Run()
	})
	run("netns", "add", n.pod)
	run("netns", "add", n.client)
	run("link", "add", "rmcrt"+suffix, "netns", n.pod, "type", "veth", "peer", "name", "rmcrtc"+suffix, "netns", n.client)
	run("-n", n.pod, "addr", "add", podAddr+"/30", "dev", "rmcrt"+suffix)
	run("-n", n.client, "addr", "add", "198.18.250.2/30", "dev", "rmcrtc"+suffix)
	for _, ns := range []string{n.pod, n.client} {
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", n.pod, "link", "set", "rmcrt"+suffix, "up")
	run("-n", n.client, "link", "set", "rmcrtc"+suffix, "up")
	fd, err := unix.Open("/run/netns/"+n.pod, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	n.podFD = fd
	return n
}

// in runs f on a thread in namespace ns. Sockets made there stay in it.
func in(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		// The thread is never unlocked: it ends with this goroutine rather than go back to the
		// runtime in another namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
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
	in(t, n.client, func() {
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

func TestRedirectToTheSidecarAndBack(t *testing.T) {
	n := newTestNet(t)
	in(t, n.pod, func() {
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
	opt := nftables.WithNetNSFd(n.podFD)
	table, err := Open("test", opt)
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
	dead, err := Open("dead", opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Redirect(80, 8001); err != nil {
		t.Fatal(err)
	}
	live, err := Open("live", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
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
	again, err := Open("live", opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Redirect(80, 8001); err != nil {
		t.Fatalf("reopened table: %v", err)
	}
}
