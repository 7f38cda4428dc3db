package e2e

import (
	"bufio"
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

// While a session of a sidecar runs over the port-forward path only, the sidecar does not serve
// QUIC on the pod IP (issue 13): a session started meanwhile in auto mode finds the direct path
// silent and takes the port-forward path too, and once the port-forward session has ended, the
// next one takes the direct path again.
func TestDirectPathPausedDuringPortForwardSession(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)

	if r := p.run(t, "exec", "pod/"+echo.pod, "--", "true"); r.code != 0 || !strings.Contains(r.stderr, "connected (direct UDP") {
		t.Fatalf("first exec: exit %d, want 0 over the direct path", r.code)
	}

	stop := startPortForwardSession(t, p, "pod/"+echo.pod)
	r := p.run(t, "exec", "pod/"+echo.pod, "-v=1", "--", "true")
	if r.code != 0 {
		t.Fatalf("exec during a port-forward session: exit %d", r.code)
	}
	if !strings.Contains(r.stderr, "connected (port-forward)") {
		t.Fatal("exec during a port-forward session connected directly: the sidecar still serves the pod IP")
	}

	stop()
	// The sidecar hears the plugin close its connection at once; a try or two covers the rest.
	for try := 1; ; try++ {
		r := p.run(t, "exec", "pod/"+echo.pod, "--", "true")
		if r.code != 0 {
			t.Fatalf("exec after the port-forward session: exit %d", r.code)
		}
		if strings.Contains(r.stderr, "connected (direct UDP") {
			break
		}
		if try == 3 {
			t.Fatal("exec after the port-forward session ended does not take the direct path again")
		}
	}
}

// startPortForwardSession starts `kubectl remocal port-forward` to target over the port-forward
// path and waits until it forwards. stop ends it with SIGINT, as Ctrl-C would, and waits.
func startPortForwardSession(t *testing.T, p *plugin, target string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cmd := p.command(ctx, "port-forward", target, "-L", "0:127.0.0.1:9000", "--transport", "port-forward")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cancel()
			<-done
		}
		cancel()
		t.Logf("port-forward stderr:\n%s", stderr.String())
	}
	t.Cleanup(stop)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "Forwarding from") {
			t.Fatalf("unexpected port-forward output %q; stderr:\n%s", l, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("port-forward did not start; stderr:\n%s", stderr.String())
	}
	return stop
}
