package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// layerSetup is an echo Service and a client pod, the target of `exec`, in one namespace:
// an answer whose remote address is the client pod's IP proves the request left from the pod.
type layerSetup struct {
	env    *env
	echo   echoApp
	client *corev1.Pod
	plugin *plugin
	// layerclient is test/e2e/testdata/layerclient built static (CGO_ENABLED=0).
	layerclient string
}

func newLayerSetup(t *testing.T) *layerSetup {
	t.Helper()
	e := newEnv(t)
	s := &layerSetup{env: e, echo: e.deployEcho(t), plugin: e.plugin(t)}
	s.client = e.deployClient(t)
	s.layerclient = buildLayerClient(t)
	return s
}

// deployClient runs an idle pod to act as (labelled app=client).
func (e *env) deployClient(t *testing.T) *corev1.Pod {
	t.Helper()
	e.createDeployment(t, "client", corev1.Container{
		Name: "app", Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"/testapp", "sleep"},
	})
	pod, err := e.waitReadyPod(e.ctx(t), "app=client")
	if err != nil {
		t.Fatalf("client Deployment: %v", err)
	}
	return pod
}

func buildLayerClient(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layerclient")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join("testdata", "layerclient")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build layerclient: %v\n%s", err, b)
	}
	return out
}

// exec runs a command under the layer on the client pod.
func (s *layerSetup) exec(t *testing.T, args ...string) result {
	t.Helper()
	return s.plugin.run(t, append([]string{"exec", "deployment/client", "--"}, args...)...)
}

// assertFromPod checks an HTTP echo answer came from the client pod.
func (s *layerSetup) assertFromPod(t *testing.T, r result) {
	t.Helper()
	s.assertEchoFrom(t, r, s.client.Status.PodIP)
}

// assertEchoFrom checks an HTTP echo answer came from the echo pod's app, to a request that
// left from the client pod's address from.
func (s *layerSetup) assertEchoFrom(t *testing.T, r result, from string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s", r.code, r.stdout)
	}
	var reply echoReply
	if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil {
		t.Fatalf("not an echo answer: %v\n%s", err, r.stdout)
	}
	if host, _, _ := net.SplitHostPort(reply.RemoteAddr); host != from {
		t.Fatalf("the echo server saw the request from %s, not from the client pod's %s", reply.RemoteAddr, from)
	}
	if reply.Hostname != s.echo.pod {
		t.Fatalf("answered by %q, not the echo pod %s", reply.Hostname, s.echo.pod)
	}
}

func TestLayerReachesServicesByName(t *testing.T) {
	s := newLayerSetup(t)
	full := "echo." + s.env.namespace + ".svc.cluster.local"
	for _, name := range []string{"echo", full} {
		url := "http://" + name + "/"
		t.Run("static Go "+name, func(t *testing.T) { s.assertFromPod(t, s.exec(t, s.layerclient, "get", url)) })
		t.Run("curl "+name, func(t *testing.T) { s.assertFromPod(t, s.exec(t, "curl", "-sS", "-m", "10", url)) })
		t.Run("python3 "+name, func(t *testing.T) {
			needTool(t, "python3")
			s.assertFromPod(t, s.exec(t, "python3", "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())", url))
		})
		t.Run("node "+name, func(t *testing.T) {
			needTool(t, "node")
			s.assertFromPod(t, s.exec(t, "node", "-e", `require("http").get(process.argv[1], r => r.pipe(process.stdout)).on("error", e => { console.error(e); process.exit(1) })`, url))
		})
	}
	t.Run("go run of a module", func(t *testing.T) {
		// The toolchain stays outside the layer (-exec): only the built program is under it.
		inModule := *s.plugin
		inModule.dir = filepath.Join("testdata", "layerclient")
		s.assertFromPod(t, inModule.run(t, "exec", "deployment/client", "-e", "CGO_ENABLED=0", "--", "go", "run", ".", "get", "http://echo/"))
		r := inModule.run(t, "exec", "deployment/client", "--", "go", "run", ".", "seccomp", "-")
		if strings.TrimSpace(r.stdout) != "self 2 parent 0" {
			t.Fatalf("want the program under the filter and go outside it: %q", r.stdout)
		}
	})
	t.Run("a shell script calling curl", func(t *testing.T) {
		s.assertFromPod(t, s.exec(t, "sh", "-c", "x=$(curl -sS -m 10 http://echo/) && printf '%s' \"$x\""))
	})
	t.Run("getent hosts", func(t *testing.T) {
		r := s.exec(t, "getent", "hosts", "echo")
		if r.code != 0 || !strings.HasPrefix(r.stdout, s.echo.clusterIP+" ") {
			t.Fatalf("getent hosts echo: exit %d, %q, want the ClusterIP %s", r.code, r.stdout, s.echo.clusterIP)
		}
	})
}

func needTool(t *testing.T, name string) {
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed here", name)
	}
}

func TestLayerUDPAndErrors(t *testing.T) {
	s := newLayerSetup(t)
	t.Run("udp echo by name", func(t *testing.T) {
		r := s.exec(t, s.layerclient, "udp", "echo:9001", "ping-udp")
		if r.code != 0 || !strings.Contains(r.stdout, "udp reply: ping-udp") {
			t.Fatalf("exit %d, %q", r.code, r.stdout)
		}
	})
	t.Run("a closed port of a pod is refused", func(t *testing.T) {
		r := s.exec(t, s.layerclient, "connect", net.JoinHostPort(s.echo.podIP, "9999"))
		if r.code != 0 || strings.TrimSpace(r.stdout) != "ECONNREFUSED" {
			t.Fatalf("exit %d, %q", r.code, r.stdout)
		}
	})
	t.Run("--local and --no-outgoing destinations are reached locally", func(t *testing.T) {
		// The node's address is on this machine and reachable from the pod too: the source
		// address the listener sees says which way the connection went.
		node := strings.TrimPrefix(strings.Split(strings.TrimPrefix(s.env.config.Host, "https://"), ":")[0], "http://")
		ln, err := net.Listen("tcp", net.JoinHostPort(node, "0"))
		if err != nil {
			t.Skipf("no local listener on the node address: %v", err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "seen from %s\n", c.RemoteAddr())
				c.Close()
			}
		}()
		r := s.plugin.run(t, "exec", "deployment/client", "--local", node+"/32", "--", s.layerclient, "connect", ln.Addr().String())
		if !strings.Contains(r.stdout, "seen from "+node+":") {
			t.Fatalf("with --local: %q", r.stdout)
		}
		r = s.plugin.run(t, "exec", "deployment/client", "--no-outgoing", "--", s.layerclient, "connect", ln.Addr().String())
		if !strings.Contains(r.stdout, "seen from "+node+":") {
			t.Fatalf("with --no-outgoing: %q", r.stdout)
		}
		r = s.exec(t, s.layerclient, "connect", ln.Addr().String())
		if !strings.Contains(r.stdout, "seen from "+s.client.Status.PodIP+":") {
			t.Fatalf("without --local the connection should come from the pod: %q", r.stdout)
		}
	})
}

func TestLayerManyConnectionsAndNoLeaks(t *testing.T) {
	s := newLayerSetup(t)
	t.Run("500 concurrent connections", func(t *testing.T) {
		r := s.exec(t, s.layerclient, "many", "echo:9000", "500")
		if r.code != 0 || !strings.Contains(r.stdout, "all ok") {
			t.Fatalf("exit %d, %q", r.code, r.stdout)
		}
	})
	t.Run("no descriptor left per connection", func(t *testing.T) {
		r := s.exec(t, s.layerclient, "fds", "echo:9000", "200")
		var before, after int
		if _, err := fmt.Sscanf(strings.TrimSpace(r.stdout), "fds before %d after %d", &before, &after); err != nil {
			t.Fatalf("exit %d, %q", r.code, r.stdout)
		}
		if after > before+4 {
			t.Fatalf("the plugin held %d descriptors before 200 connections and %d after", before, after)
		}
	})
}

func TestLayerPluginKilled(t *testing.T) {
	s := newLayerSetup(t)
	cmd := s.plugin.command(t.Context(), "exec", "deployment/client", "--", s.layerclient, "loop", "echo:9000")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no pid from the program: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		t.Fatalf("program said %q", line)
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the program (pid %d) still runs 5s after the plugin was killed", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
