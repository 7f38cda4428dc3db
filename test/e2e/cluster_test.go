package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
)

// These tests prove the cluster itself: everything the plugin relies on, checked with plain
// client-go before any remocal code is involved.

func TestNodeReady(t *testing.T) {
	env := newEnv(t)
	nodes, err := env.client.CoreV1().Nodes().List(env.ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) == 0 {
		t.Fatal("the cluster has no node")
	}
	for _, n := range nodes.Items {
		if !nodeIsReady(n) {
			t.Errorf("node %s is not Ready", n.Name)
		}
	}
}

func TestEchoServiceAnswersOnClusterIP(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)

	t.Run("http", func(t *testing.T) {
		got := httpEcho(t, fmt.Sprintf("http://%s/hello?x=1", net.JoinHostPort(echo.clusterIP, "80")))
		if got.Path != "/hello" {
			t.Fatalf("echo path = %q, want /hello", got.Path)
		}
		if got.Env["ECHO_FROM_SECRET"] != "s3cret" {
			t.Fatalf("echo env lacks the Secret's variable: %v", got.Env)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(echo.clusterIP, "9000"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		roundTrip(t, conn, "tcp ping\n")
	})
	t.Run("udp", func(t *testing.T) {
		conn, err := net.Dial("udp", net.JoinHostPort(echo.clusterIP, "9001"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// UDP may drop the first datagram while conntrack and the Service rules settle.
		var lastErr error
		for range 5 {
			if lastErr = udpRoundTrip(conn, "udp ping"); lastErr == nil {
				return
			}
		}
		t.Fatal(lastErr)
	})
}

func TestClusterDNS(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	resolver := env.clusterResolver(t)
	ctx := env.ctx(t)

	addrs, err := resolver.LookupHost(ctx, fmt.Sprintf("echo.%s.svc.cluster.local", env.namespace))
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0] != echo.clusterIP {
		t.Fatalf("echo Service resolved to %v, want %s", addrs, echo.clusterIP)
	}
	// Cluster DNS serves only the cluster domain and forwards nothing off the machine.
	_, err = resolver.LookupHost(ctx, "example.com")
	var dnsErr *net.DNSError
	if !asDNSError(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("lookup of an outside name: %v, want NXDOMAIN", err)
	}
}

func TestPortForward(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)

	transport, upgrader, err := spdy.RoundTripperFor(env.config)
	if err != nil {
		t.Fatal(err)
	}
	req := env.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(env.namespace).Name(echo.pod).SubResource("portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, req.URL())
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	defer func() {
		close(stop)
		<-errc
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port-forward: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("port-forward not ready after 30s")
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	got := httpEcho(t, fmt.Sprintf("http://127.0.0.1:%d/through-port-forward", ports[0].Local))
	if got.Path != "/through-port-forward" || got.Hostname != echo.pod {
		t.Fatalf("echo = path %q hostname %q, want /through-port-forward and %s", got.Path, got.Hostname, echo.pod)
	}
}

// TestEphemeralContainerWithNetAdmin adds an ephemeral container the way the plugin will (patch of
// the ephemeralcontainers subresource, targetContainerName, NET_ADMIN), then checks it runs in
// the pod's network namespace.
func TestEphemeralContainerWithNetAdmin(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	ctx := env.ctx(t)

	pod, err := env.client.CoreV1().Pods(env.namespace).Get(ctx, echo.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const name = "e2e-debugger"
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:            name,
			Image:           testAppImage,
			ImagePullPolicy: corev1.PullNever,
			Command:         []string{"/testapp", "sleep"},
			SecurityContext: &corev1.SecurityContext{
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
			},
		},
		TargetContainerName: "http",
	})
	begin := time.Now()
	if _, err := env.client.CoreV1().Pods(env.namespace).UpdateEphemeralContainers(ctx, echo.pod, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := env.client.CoreV1().Pods(env.namespace).Get(ctx, echo.pod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range p.Status.EphemeralContainerStatuses {
			if s.Name == name && s.State.Running != nil {
				return true, nil
			}
			if s.Name == name && s.State.Terminated != nil {
				return false, fmt.Errorf("ephemeral container terminated: %s", s.State.Terminated.Reason)
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("ephemeral container not running: %v", err)
	}
	t.Logf("ephemeral container running %s after the patch", time.Since(begin).Round(10*time.Millisecond))

	out := env.exec(t, echo.pod, name, "/testapp", "ifaces")
	if !strings.Contains(out, "eth0") || !strings.Contains(out, echo.podIP) {
		t.Fatalf("ephemeral container does not see the pod's eth0 with %s:\n%s", echo.podIP, out)
	}
}

// exec runs a command in a container and returns its stdout.
func (e *env) exec(t *testing.T, pod, container string, command ...string) string {
	t.Helper()
	req := e.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(e.namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	executor, err := remotecommand.NewSPDYExecutor(e.config, http.MethodPost, req.URL())
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := executor.StreamWithContext(e.ctx(t), remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatalf("exec %v in %s/%s: %v: %s", command, pod, container, err, stderr.String())
	}
	return stdout.String()
}

// echoReply is what the test app's HTTP echo answers.
type echoReply struct {
	Path       string            `json:"path"`
	Hostname   string            `json:"hostname"`
	RemoteAddr string            `json:"remoteAddr"`
	Env        map[string]string `json:"env"`
}

func httpEcho(t *testing.T, rawURL string) echoReply {
	t.Helper()
	if _, err := url.Parse(rawURL); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	// A Service's rules can lag its endpoints after the pod turns Ready: by more than 10 s once,
	// in CI, for the first Service after the cluster came up.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		resp, err := client.Get(rawURL)
		if err != nil {
			lastErr = err
			time.Sleep(500 * time.Millisecond)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r echoReply
		if err == nil {
			err = json.Unmarshal(body, &r)
		}
		if resp.StatusCode != http.StatusOK || err != nil {
			// Seen once right after the Service was created: an empty answer. Retry it like a
			// refused connection, and say what came if it never settles.
			lastErr = fmt.Errorf("status %s, body %q: %v", resp.Status, body, err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		return r
	}
	t.Fatalf("GET %s: %v", rawURL, lastErr)
	return echoReply{}
}

func roundTrip(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if line != msg {
		t.Fatalf("echo = %q, want %q", line, msg)
	}
}

func udpRoundTrip(conn net.Conn, msg string) error {
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, msg); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != msg {
		return fmt.Errorf("udp echo = %q, want %q", buf[:n], msg)
	}
	return nil
}
