package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// TestPortForwardLinkSurvivesBreaks pushes bytes through the pod's TCP echo server over the
// port-forward path while the plugin breaks its port-forward connection every second: the
// transfer must complete with identical bytes.
func TestPortForwardLinkSurvivesBreaks(t *testing.T) {
	env := newEnv(t)
	env.deployEcho(t)
	p := env.plugin(t)

	// Big enough, and breaks often enough, that at least two come during the transfer.
	const size = 128 << 20
	local, stderr := p.forward(t, "deployment/echo", "127.0.0.1:9000", "--transport", "port-forward", "--debug-break-link-every", "500ms", "-v=1")
	sent, got, took := echoTransfer(t, local, size)
	if sent != got {
		t.Fatalf("sha256 of bytes sent %x, received %x", sent, got)
	}
	if breaks := strings.Count(stderr.String(), "breaking the port-forward connection"); breaks < 2 {
		t.Fatalf("the link was broken %d times during the transfer, want at least 2", breaks)
	}
	t.Logf("%d MiB echoed through the port-forward path with breaks in %s", size>>20, took.Round(time.Millisecond))
}

// TestPortForwardReachesServiceByName checks the pod-side dial resolves cluster DNS names.
func TestPortForwardReachesServiceByName(t *testing.T) {
	env := newEnv(t)
	env.deployEcho(t)
	p := env.plugin(t)

	local, _ := p.forward(t, "deployment/echo", fmt.Sprintf("echo.%s.svc.cluster.local:9000", env.namespace))
	sent, got, _ := echoTransfer(t, local, 1<<20)
	if sent != got {
		t.Fatal("bytes differ through the Service")
	}
}

// port-forward -L /udp reaches a Service's UDP port by its cluster name: each local client is
// a flow of its own, and the answers come back to it.
func TestPortForwardUDPReachesServiceByName(t *testing.T) {
	env := newEnv(t)
	env.deployEcho(t)
	p := env.plugin(t)

	local, _ := p.forward(t, "deployment/echo", fmt.Sprintf("echo.%s.svc.cluster.local:9001/udp", env.namespace))
	local = strings.TrimSuffix(local, "/udp")
	for i := range 2 { // two clients, two flows
		conn, err := net.Dial("udp", local)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		msg := fmt.Sprintf("datagram from client %d", i)
		var reply string
		// The first datagram of a flow waits for its stream; a lost one is sent again.
		for try := 0; try < 5 && reply == ""; try++ {
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 1500)
			if n, err := conn.Read(buf); err == nil {
				reply = string(buf[:n])
			}
		}
		if !strings.Contains(reply, msg) {
			t.Fatalf("client %d got %q, want the echo of %q", i, reply, msg)
		}
	}
}

// TestSidecarRefusesAnotherKey dials a running sidecar directly with a key it was not started
// for: it must not serve it.
func TestSidecarRefusesAnotherKey(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)
	if r := p.run(t, "exec", "pod/"+echo.pod, "--", "true"); r.code != 0 {
		t.Fatalf("exec: exit %d", r.code)
	}
	ctx := env.ctx(t)
	pod, err := env.client.CoreV1().Pods(env.namespace).Get(ctx, echo.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ec := pod.Spec.EphemeralContainers[len(pod.Spec.EphemeralContainers)-1]
	flags, err := sidecarapi.ParseArgs(ec.Args)
	if err != nil {
		t.Fatal(err)
	}
	port := flags.Port
	logs, err := env.client.CoreV1().Pods(env.namespace).GetLogs(echo.pod, &corev1.PodLogOptions{Container: ec.Name}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(bytes.NewReader(logs)).ReadBytes('\n')
	first, err := sidecarapi.ParseStartLine(line)
	if err != nil {
		t.Fatalf("the sidecar's first log line %q: %v", line, err)
	}

	intruder, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := transport.Dial(dctx, udp, &net.UDPAddr{IP: net.ParseIP(echo.podIP), Port: port}, transport.ClientTLS(intruder, first.Fingerprint))
	if err == nil {
		defer conn.CloseWithError(0, "")
		var stream io.ReadWriteCloser
		if stream, err = conn.OpenStreamSync(dctx); err == nil {
			_ = wire.WriteMessage(stream, wire.Hello{Version: wire.Version})
			_, err = wire.NewReader(stream).ReadMessage()
		}
	}
	if err == nil {
		t.Fatal("the sidecar served a client whose key it was not started for")
	}
	t.Logf("refused as expected: %v", err)
}

// forward starts `kubectl remocal port-forward` to remote and returns the local address.
func (p *plugin) forward(t *testing.T, target, remote string, extra ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	local, stderr, _ := p.startForward(t, target, remote, extra...)
	return local, stderr
}

// startForward starts `kubectl remocal port-forward` to remote, waits until it forwards, and
// returns the local address, its stderr, and interrupt, which ends it with SIGINT as Ctrl-C
// would and waits (killing it after 20 s). What is still running when the test ends is killed.
func (p *plugin) startForward(t *testing.T, target, remote string, extra ...string) (local string, stderr *syncbuf.Buffer, interrupt func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	args := append([]string{"port-forward", target, "-L", "0:" + remote}, extra...)
	cmd := p.command(ctx, args...)
	stderr = &syncbuf.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	var once sync.Once
	end := func(stop func()) {
		once.Do(func() {
			stop()
			<-done
			cancel()
			t.Logf("port-forward stderr:\n%s", stderr.String())
		})
	}
	t.Cleanup(func() { end(cancel) })
	interrupt = func() {
		end(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cancel()
			}
		})
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-lines:
		// "Forwarding from 127.0.0.1:PORT -> REMOTE"
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("unexpected port-forward output %q; stderr:\n%s", line, stderr.String())
		}
		return f[2], stderr, interrupt
	case <-time.After(2 * time.Minute):
		t.Fatalf("port-forward did not start; stderr:\n%s", stderr.String())
		return "", nil, nil
	}
}

// echoTransfer writes size random bytes to an echo server at addr and reads them back, hashing
// both directions.
func echoTransfer(t *testing.T, addr string, size int64) (sent, got [32]byte, took time.Duration) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	begin := time.Now()
	sendHash, recvHash := sha256.New(), sha256.New()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(conn, sendHash), io.LimitReader(rand.Reader, size))
		errc <- err
	}()
	n, err := io.CopyN(recvHash, conn, size)
	if err != nil {
		t.Fatalf("received %d of %d bytes: %v", n, size, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	copy(sent[:], sendHash.Sum(nil))
	copy(got[:], recvHash.Sum(nil))
	return sent, got, time.Since(begin)
}
