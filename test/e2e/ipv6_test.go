package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ipv6Setup is a layerSetup on a dual-stack cluster, plus an IPv6-only Service (echo6) in front
// of the echo pod, and both pods' IPv6 addresses: every address a case uses is IPv6, so nothing
// passes by falling back to IPv4.
type ipv6Setup struct {
	*layerSetup
	clusterIP6 string // echo6's ClusterIP
	echoIP6    string // the echo pod's IPv6 address
	clientIP6  string // the client pod's
}

// newIPv6Setup skips the test on a cluster that has no IPv6: the API server refuses the IPv6
// Service, which is made first so that nothing else is deployed for nothing.
func newIPv6Setup(t *testing.T) *ipv6Setup {
	t.Helper()
	e := newEnv(t)
	single := corev1.IPFamilyPolicySingleStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo6"},
		Spec: corev1.ServiceSpec{
			Selector:       map[string]string{"app": "echo"},
			IPFamilyPolicy: &single,
			IPFamilies:     []corev1.IPFamily{corev1.IPv6Protocol},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
				{Name: "tcp", Port: 9000, TargetPort: intstr.FromInt32(9000), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 9001, TargetPort: intstr.FromInt32(9001), Protocol: corev1.ProtocolUDP},
			},
		},
	}
	created, err := e.client.CoreV1().Services(e.namespace).Create(e.ctx(t), svc, metav1.CreateOptions{})
	if err != nil {
		if strings.Contains(err.Error(), "not configured on this cluster") {
			t.Skipf("e2e: the cluster has no IPv6 (make cluster-up starts a dual-stack one): %v", err)
		}
		t.Fatal(err)
	}
	s := &ipv6Setup{layerSetup: &layerSetup{env: e, echo: e.deployEcho(t), plugin: e.plugin(t)}, clusterIP6: created.Spec.ClusterIP}
	s.client = e.deployClient(t)
	s.layerclient = buildLayerClient(t)
	s.echoIP6 = e.podIPv6(t, s.echo.pod)
	s.clientIP6 = e.podIPv6(t, s.client.Name)
	t.Logf("echo6 ClusterIP %s, echo pod %s, client pod %s", s.clusterIP6, s.echoIP6, s.clientIP6)
	return s
}

// podIPv6 returns the pod's IPv6 address, from status.podIPs.
func (e *env) podIPv6(t *testing.T, name string) string {
	t.Helper()
	pod, err := e.client.CoreV1().Pods(e.namespace).Get(e.ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is6() && !a.Is4In6() {
			return a.String()
		}
	}
	t.Fatalf("pod %s has no IPv6 address on a cluster with IPv6 Services: %v", name, pod.Status.PodIPs)
	return ""
}

// assertFromPodIPv6 checks an HTTP echo answer came from the echo pod's app, to a request that
// left from the client pod's IPv6 address.
func (s *ipv6Setup) assertFromPodIPv6(t *testing.T, r result) {
	t.Helper()
	s.assertEchoFrom(t, r, s.clientIP6)
}

// TestIPv6 runs every IPv6 case of the dual-stack cluster on one deployment: outgoing TCP and
// UDP through the layer, AAAA answers, steal and mirror of connections arriving over IPv6, the
// direct link to the pod's IPv6 address, and port-forward -L to IPv6 destinations.
func TestIPv6(t *testing.T) {
	s := newIPv6Setup(t)
	svc6 := "echo6." + s.env.namespace + ".svc.cluster.local"

	t.Run("outgoing TCP to the IPv6 ClusterIP", func(t *testing.T) {
		s.assertFromPodIPv6(t, s.exec(t, s.layerclient, "get", "http://"+net.JoinHostPort(s.clusterIP6, "80")+"/"))
	})
	t.Run("outgoing TCP to the IPv6 pod IP", func(t *testing.T) {
		s.assertFromPodIPv6(t, s.exec(t, s.layerclient, "get", "http://"+net.JoinHostPort(s.echoIP6, "8080")+"/"))
	})
	for name, addr := range map[string]string{"ClusterIP": s.clusterIP6, "pod IP": s.echoIP6} {
		t.Run("outgoing UDP to the IPv6 "+name, func(t *testing.T) {
			r := s.exec(t, s.layerclient, "udp", net.JoinHostPort(addr, "9001"), "ping-udp6")
			if r.code != 0 || !strings.Contains(r.stdout, "udp reply: ping-udp6") {
				t.Fatalf("exit %d, %q", r.code, r.stdout)
			}
		})
	}
	t.Run("AAAA answers from the pod's DNS", func(t *testing.T) {
		r := s.exec(t, "getent", "ahostsv6", svc6)
		if r.code != 0 || !strings.HasPrefix(r.stdout, s.clusterIP6+" ") {
			t.Fatalf("getent ahostsv6 %s: exit %d, %q, want the IPv6 ClusterIP %s", svc6, r.code, r.stdout, s.clusterIP6)
		}
		// A name with only an AAAA record: a static Go program resolves it and connects over IPv6.
		s.assertFromPodIPv6(t, s.exec(t, s.layerclient, "get", "http://echo6/"))
	})

	t.Run("steal of connections arriving over IPv6", func(t *testing.T) {
		podURL := "http://" + net.JoinHostPort(s.echoIP6, "8080")
		var app echoReply
		if err := json.Unmarshal([]byte(get(podURL+"/who")), &app); err != nil {
			t.Fatal(err)
		}
		us, _, _ := net.SplitHostPort(app.RemoteAddr)
		sess := startIncoming(t, s.layerSetup, ":8080", func(*incomingSession) bool { return strings.HasPrefix(get(podURL+"/ready"), "local ") }, "--steal")
		for name, url := range map[string]string{
			"pod IP":    podURL + "/pod-ip",
			"ClusterIP": "http://" + net.JoinHostPort(s.clusterIP6, "80") + "/cluster-ip",
		} {
			body := get(url)
			if !strings.HasPrefix(body, "local /") {
				t.Errorf("%s: answered %q, want the local server", name, body)
			}
			if name == "pod IP" && !strings.Contains(body, " from ["+us+"]:") {
				t.Errorf("%s: the local server saw the request %q, want it from %s as the app does", name, body, us)
			}
		}
		sess.stop(syscall.SIGINT)
		waitApp(t, s.layerSetup, 5*time.Second)
	})
	t.Run("mirror of connections arriving over IPv6", func(t *testing.T) {
		sess := startIncoming(t, s.layerSetup, ":8080", func(sess *incomingSession) bool {
			return strings.Contains(sess.stderr.String(), "mirroring the pod's port 8080")
		})
		for i := range 3 {
			path := fmt.Sprintf("/mirror6-%d", i)
			body := get("http://" + net.JoinHostPort(s.clusterIP6, "80") + path)
			var reply echoReply
			if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.Hostname != s.echo.pod || reply.Path != path {
				t.Fatalf("%s: answered %q, want the pod's app", path, body)
			}
			if !sess.got(t, "GET "+path, 10*time.Second) {
				t.Fatalf("the local server never got a copy of %s", path)
			}
		}
		sess.stop(syscall.SIGINT)
	})

	t.Run("the direct link to the pod's IPv6 address", func(t *testing.T) {
		r := s.plugin.run(t, "exec", "deployment/client", "--transport", "direct", "--debug-direct-ip-family", "IPv6", "-v=1", "--",
			s.layerclient, "get", "http://echo6/")
		s.assertFromPodIPv6(t, r)
		if want := "direct UDP to " + s.clientIP6; !strings.Contains(r.stderr, want) {
			t.Fatalf("stderr does not say %q:\n%s", want, r.stderr)
		}
	})

	for name, remote := range map[string]string{
		"the IPv6 pod IP":    net.JoinHostPort(s.echoIP6, "9000"),
		"the IPv6 ClusterIP": net.JoinHostPort(s.clusterIP6, "9000"),
		"an AAAA-only name":  svc6 + ":9000",
	} {
		t.Run("port-forward -L to "+name, func(t *testing.T) {
			local, _ := s.plugin.forward(t, "deployment/echo", remote)
			if sent, got, _ := echoTransfer(t, local, 1<<20); sent != got {
				t.Fatal("bytes differ")
			}
		})
	}
}
