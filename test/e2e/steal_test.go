package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startSteal runs `exec --steal` of a local HTTP server on the echo pod's port 8080 and waits
// until the pod's port answers locally.
func startSteal(t *testing.T, s *layerSetup, flags ...string) (stop func(sig syscall.Signal)) {
	t.Helper()
	listen := ":8080"
	if len(flags) > 0 {
		listen = ":9090" // with -p 9090:8080
	}
	args := append(append([]string{"exec", "deployment/echo", "--steal"}, flags...), "--", s.layerclient, "serve", listen)
	cmd := s.plugin.command(t.Context(), args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func(sig syscall.Signal) {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
		t.Logf("plugin stderr:\n%s", stderr.String())
	}
	t.Cleanup(func() { stop(syscall.SIGKILL) })
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("the local server did not start: %v\n%s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	url := "http://" + s.echo.podIP + ":8080/ready"
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasPrefix(get(url), "local ") {
		if time.Now().After(deadline) {
			t.Fatalf("the pod's port never came to the local server (last answer %q)\n%s", get(url), stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return stop
}

// get returns the body of a GET on a new connection, or the error's text. A kept-alive
// connection would stay with whoever answered it first: connections made before a redirect keep
// going to the app.
func get(url string) string {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitApp waits until the pod's own app answers on its port again and says how long it took.
func waitApp(t *testing.T, s *layerSetup, within time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		if body := get("http://" + s.echo.podIP + ":8080/back"); strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
			return time.Since(begin)
		}
		if time.Since(begin) > within {
			t.Fatalf("the pod's app does not answer %s after the session", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStealHTTP(t *testing.T) {
	s := newLayerSetup(t)
	stop := startSteal(t, s)
	for name, url := range map[string]string{
		"pod IP":    "http://" + s.echo.podIP + ":8080/pod-ip",
		"ClusterIP": "http://" + s.echo.clusterIP + "/cluster-ip",
	} {
		if body := get(url); !strings.HasPrefix(body, "local /") {
			t.Errorf("%s: answered %q, want the local server", name, body)
		}
	}
	stop(syscall.SIGINT)
	t.Logf("the app answered again %s after the session ended", waitApp(t, s, 5*time.Second))

	t.Run("a local port mapped to the pod's", func(t *testing.T) {
		stop := startSteal(t, s, "-p", "9090:8080")
		stop(syscall.SIGINT)
		waitApp(t, s, 5*time.Second)
	})
	t.Run("SIGKILL of the plugin", func(t *testing.T) {
		stop := startSteal(t, s)
		stop(syscall.SIGKILL)
		// The sidecar ends the subscription when QUIC's idle timeout (10 s) says the client is gone.
		t.Logf("the app answered again %s after SIGKILL of the plugin", waitApp(t, s, 15*time.Second))
	})
	t.Run("SIGKILL of the sidecar's worker", func(t *testing.T) {
		startSteal(t, s)
		worker := s.env.sidecarWorker(t, s.echo.pod)
		if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The guard process deletes the worker's redirect table as soon as the worker is gone.
		t.Logf("the app answered again %s after SIGKILL of the sidecar's worker", waitApp(t, s, 2*time.Second))
	})
}

// sidecarWorker finds, on this machine, the worker process of the pod's newest sidecar: the
// local cluster runs containers as host processes.
func (e *env) sidecarWorker(t *testing.T, pod string) int {
	t.Helper()
	p, err := e.client.CoreV1().Pods(e.namespace).Get(e.ctx(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	var newest time.Time
	for _, s := range p.Status.EphemeralContainerStatuses {
		if strings.HasPrefix(s.Name, "remocal-") && s.State.Running != nil && !s.State.Running.StartedAt.Time.Before(newest) {
			id, newest = s.ContainerID, s.State.Running.StartedAt.Time
		}
	}
	_, id, _ = strings.Cut(id, "://")
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if id != "" && strings.Contains(string(cg), id) && strings.Contains(string(cmdline), "--worker") {
			return pid
		}
	}
	t.Skip("the sidecar's worker is not a process on this machine (not the local cluster)")
	return 0
}
