package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// testAppImage is the e2e workload image; `make cluster-load` imports it into the local cluster.
// Against another cluster, load it there under this name or set REMOCAL_E2E_TESTAPP_IMAGE.
const testAppImage = "remocal.local/testapp:e2e"

// env is one test's view of the cluster: clients and a namespace of its own, deleted at the end.
type env struct {
	config    *rest.Config
	client    kubernetes.Interface
	namespace string
}

// newEnv connects to the cluster named by KUBECONFIG, or skips the test saying how to get one.
func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		t.Skip("e2e: no cluster: set KUBECONFIG (make cluster-up prints it, make e2e sets it)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("e2e: kubeconfig %s: %v", path, err)
	}
	if err := localTestNetwork(cfg.Host); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{config: cfg, client: client, namespace: "remocal-e2e-" + rand.String(6)}
	ctx := e.ctx(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.namespace, Labels: map[string]string{"remocal.dev/e2e": "true"}}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		// Background: a test's own context may already be done; deletion must still happen.
		_ = client.CoreV1().Namespaces().Delete(context.Background(), e.namespace, metav1.DeleteOptions{})
	})
	return e
}

// testNetwork is where the local test cluster lives (TEST-CLUSTER.md): its addresses exist only
// on this machine while the cluster is up.
var testNetwork = netip.MustParsePrefix("198.18.0.0/15")

// localTestNetwork refuses an API server on the test network that is not on this machine: the
// local cluster is down, and its address would be routed off the machine, to whoever holds it
// there.
func localTestNetwork(host string) error {
	u, err := url.Parse(host)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil || !testNetwork.Contains(ip) {
		return nil // a name, or another cluster's address: not ours to judge
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
			return nil
		}
	}
	return fmt.Errorf("the API server %s is on the test network but not on this machine: the local cluster is down (make cluster-up)", ip)
}

// ctx bounds every API call of a test.
func (e *env) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testApp() string {
	if img := os.Getenv("REMOCAL_E2E_TESTAPP_IMAGE"); img != "" {
		return img
	}
	return testAppImage
}

// echoApp is a running echo Deployment and its Service.
type echoApp struct {
	pod       string
	podIP     string
	clusterIP string
}

// deployEcho runs the test app's HTTP, TCP and UDP echo servers in one pod, with a variable that
// comes from a Secret through envFrom, behind a Service named echo, and waits until it is Ready.
func (e *env) deployEcho(t *testing.T) echoApp {
	t.Helper()
	ctx := e.ctx(t)
	labels := map[string]string{"app": "echo"}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-secret"},
		StringData: map[string]string{"ECHO_FROM_SECRET": "s3cret"},
	}
	if _, err := e.client.CoreV1().Secrets(e.namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	container := func(name string, port int32, proto corev1.Protocol, args ...string) corev1.Container {
		return corev1.Container{
			Name:            name,
			Image:           testApp(),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         append([]string{"/testapp"}, args...),
			Ports:           []corev1.ContainerPort{{ContainerPort: port, Protocol: proto}},
			EnvFrom:         []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "echo-secret"}}}},
		}
	}
	http := container("http", 8080, corev1.ProtocolTCP, "http", "-addr", ":8080")
	http.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1,
	}
	e.createDeployment(t, "echo", http,
		container("tcp", 9000, corev1.ProtocolTCP, "tcp", "-addr", ":9000"),
		container("udp", 9001, corev1.ProtocolUDP, "udp", "-addr", ":9001"),
		container("grpc", 9002, corev1.ProtocolTCP, "grpc", "-addr", ":9002", "-name", "app"))
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
				{Name: "tcp", Port: 9000, TargetPort: intstr.FromInt32(9000), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 9001, TargetPort: intstr.FromInt32(9001), Protocol: corev1.ProtocolUDP},
				{Name: "grpc", Port: 9002, TargetPort: intstr.FromInt32(9002), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	created, err := e.client.CoreV1().Services(e.namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := e.waitReadyPod(ctx, "app=echo")
	if err != nil {
		t.Fatalf("echo Deployment: %v", err)
	}
	return echoApp{pod: pod.Name, podIP: pod.Status.PodIP, clusterIP: created.Spec.ClusterIP}
}

// createDeployment creates a one-replica Deployment of containers, labelled app=name.
func (e *env) createDeployment(t *testing.T, name string, containers ...corev1.Container) {
	t.Helper()
	e.createDeploymentSpec(t, name, corev1.PodSpec{Containers: containers})
}

// createDeploymentSpec creates a one-replica Deployment of pods like spec, labelled app=name,
// that end at once when deleted.
func (e *env) createDeploymentSpec(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	spec.TerminationGracePeriodSeconds = new(int64)
	labels := map[string]string{"app": name}
	one := int32(1)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       spec,
			},
		},
	}
	if _, err := e.client.AppsV1().Deployments(e.namespace).Create(e.ctx(t), deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitReadyPod waits for a Ready pod matching selector, failing fast with the reason when a
// container cannot start (a missing image never becomes Ready).
func (e *env) waitReadyPod(ctx context.Context, selector string) (*corev1.Pod, error) {
	var ready *corev1.Pod
	var lastState string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := e.client.CoreV1().Pods(e.namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			lastState = string(p.Status.Phase)
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImageNeverPull" || w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" || w.Reason == "CreateContainerError") {
					return false, fmt.Errorf("container %s: %s: %s (is the image loaded? make cluster-load)", cs.Name, w.Reason, w.Message)
				}
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready = p
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("no Ready pod for %s (last phase %q): %w", selector, lastState, err)
	}
	return ready, nil
}

// clusterResolver asks the cluster's DNS server directly (the nameserver the node hands its pods).
func (e *env) clusterResolver(t *testing.T) *net.Resolver {
	t.Helper()
	dns := os.Getenv("REMOCAL_E2E_CLUSTER_DNS")
	if dns == "" {
		host := strings.TrimPrefix(strings.Split(strings.TrimPrefix(e.config.Host, "https://"), ":")[0], "http://")
		dns = net.JoinHostPort(host, "53") // the local cluster serves DNS on the node's address
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, dns)
		},
	}
}

func nodeIsReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func asDNSError(err error, target **net.DNSError) bool { return errors.As(err, target) }
