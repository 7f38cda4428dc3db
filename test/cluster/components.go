package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/remocal/kubectl-remocal/test/cluster/daemon"
	"github.com/remocal/kubectl-remocal/test/cluster/runtime"
)

// component is one process of the cluster: how to start it and how to tell it is ready.
type component struct {
	name    string
	spec    daemon.Spec
	ready   func(ctx context.Context) error
	timeout time.Duration
}

// binaries locates the executables the components run.
type binaries struct {
	kubeDir string // kube-apiserver, kubelet, ... built by kubebuild
	coreDNS string
}

// components lists the cluster's processes in start order; down stops them in reverse.
func components(l layout, c credentials, bins binaries) []component {
	kube := func(name string) string { return filepath.Join(bins.kubeDir, name) }
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", l.EtcdPort)
	return []component{
		{
			name: "containerd",
			spec: daemon.Spec{Path: "containerd", Args: []string{"--config", l.path("containerd.toml")}},
			ready: func(ctx context.Context) error {
				return runtime.Ready(ctx, l.containerdSocket())
			},
			timeout: 30 * time.Second,
		},
		{
			name: "etcd",
			spec: daemon.Spec{Path: "etcd", Args: []string{
				"--name", l.NodeName,
				"--data-dir", l.path("etcd"),
				"--listen-client-urls", etcdURL,
				"--advertise-client-urls", etcdURL,
				"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", l.EtcdPeerPort),
				"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", l.EtcdPeerPort),
				"--initial-cluster", fmt.Sprintf("%s=http://127.0.0.1:%d", l.NodeName, l.EtcdPeerPort),
				// A throw-away test cluster: no fsync per write keeps the API fast on a shared disk.
				"--unsafe-no-fsync",
			}},
			ready:   httpOK(etcdURL+"/health", `"health":"true"`),
			timeout: 30 * time.Second,
		},
		{
			name: "kube-apiserver",
			spec: daemon.Spec{Path: kube("kube-apiserver"), Args: []string{
				"--etcd-servers", etcdURL,
				"--bind-address", l.NodeIP.String(),
				"--advertise-address", l.NodeIP.String(),
				fmt.Sprintf("--secure-port=%d", l.APIServerPort),
				"--service-cluster-ip-range", l.Services + "," + l.Services6,
				"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
				"--service-account-key-file", c.SAPub,
				"--service-account-signing-key-file", c.SAKey,
				"--client-ca-file", c.CA,
				"--tls-cert-file", c.APIServer.Cert,
				"--tls-private-key-file", c.APIServer.Key,
				"--kubelet-client-certificate", c.APIServerClient.Cert,
				"--kubelet-client-key", c.APIServerClient.Key,
				"--kubelet-preferred-address-types", "InternalIP",
				"--authorization-mode", "Node,RBAC",
				"--enable-admission-plugins", "NodeRestriction",
				"--allow-privileged=true",
				"--profiling=false",
			}},
			ready:   apiReady(l),
			timeout: 90 * time.Second,
		},
		{
			name: "kube-controller-manager",
			spec: daemon.Spec{Path: kube("kube-controller-manager"), Args: []string{
				"--kubeconfig", l.adminKubeconfig(),
				"--authentication-kubeconfig", l.adminKubeconfig(),
				"--authorization-kubeconfig", l.adminKubeconfig(),
				"--bind-address", "127.0.0.1",
				"--leader-elect=false",
				"--service-account-private-key-file", c.SAKey,
				"--root-ca-file", c.CA,
				"--cluster-signing-cert-file", c.CA,
				"--cluster-signing-key-file", filepath.Join(l.pkiDir(), "ca.key"),
				"--use-service-account-credentials=false",
				"--allocate-node-cidrs=false",
			}},
			ready:   httpOK("https://127.0.0.1:10257/healthz", "ok"),
			timeout: 60 * time.Second,
		},
		{
			name: "kube-scheduler",
			spec: daemon.Spec{Path: kube("kube-scheduler"), Args: []string{
				"--kubeconfig", l.adminKubeconfig(),
				"--authentication-kubeconfig", l.adminKubeconfig(),
				"--authorization-kubeconfig", l.adminKubeconfig(),
				"--bind-address", "127.0.0.1",
				"--leader-elect=false",
			}},
			ready:   httpOK("https://127.0.0.1:10259/healthz", "ok"),
			timeout: 60 * time.Second,
		},
		{
			name: "kubelet",
			spec: daemon.Spec{Path: kube("kubelet"), Args: []string{
				"--config", l.path("kubelet.yaml"),
				"--kubeconfig", l.kubeletKubeconfig(),
				"--root-dir", l.kubeletRoot(),
				"--cert-dir", l.path("kubelet-pki"),
				"--node-ip", l.NodeIP.String() + "," + l.NodeIP6.String(),
				"--hostname-override", l.NodeName,
				"--v", "1",
			}},
			ready:   nodeReadySince(l, time.Now()),
			timeout: 120 * time.Second,
		},
		{
			name:    "kube-proxy",
			spec:    daemon.Spec{Path: kube("kube-proxy"), Args: []string{"--config", l.path("kube-proxy.yaml")}},
			ready:   httpOK("http://127.0.0.1:10256/healthz", ""),
			timeout: 60 * time.Second,
		},
		{
			name:    "coredns",
			spec:    daemon.Spec{Path: bins.coreDNS, Args: []string{"-conf", l.path("Corefile")}},
			ready:   dnsAnswers(l),
			timeout: 60 * time.Second,
		},
	}
}

// wait polls ready until it succeeds, the timeout passes, or the process exits. The error names
// the component and its log, the first place to look.
func wait(ctx context.Context, comp component, proc *daemon.Process) error {
	ctx, cancel := context.WithTimeout(ctx, comp.timeout)
	defer cancel()
	var last error
	for {
		if last = comp.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-proc.Exited:
			return fmt.Errorf("%s exited during start-up (%v); log: %s", comp.name, proc.ExitErr(), proc.Log)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v; log: %s", comp.name, comp.timeout, last, proc.Log)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// httpOK checks that url answers 200 (and contains want, if set). Certificates are not verified:
// these are the components' self-signed health endpoints on loopback.
func httpOK(url, want string) func(ctx context.Context) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		if want != "" && !strings.Contains(string(body), want) {
			return fmt.Errorf("%s: unexpected answer %q", url, body)
		}
		return nil
	}
}

func clientset(l layout) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.adminKubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func apiReady(l layout) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cs, err := clientset(l)
		if err != nil {
			return err
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("readyz: %w", err)
		}
		if string(body) != "ok" {
			return fmt.Errorf("readyz: %s", body)
		}
		return nil
	}
}

// nodeReady checks the node's Ready condition as the API has it.
func nodeReady(l layout) func(ctx context.Context) error {
	return nodeReadySince(l, time.Time{})
}

// nodeReadySince also requires a heartbeat after since: after a restart, etcd still holds the
// previous kubelet's "Ready", which says nothing about the new one.
func nodeReadySince(l layout, since time.Time) func(ctx context.Context) error {
	// The API stores heartbeats with one-second precision.
	since = since.Truncate(time.Second)
	return func(ctx context.Context) error {
		cs, err := clientset(l)
		if err != nil {
			return err
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, l.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("node %s: %w", l.NodeName, err)
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.LastHeartbeatTime.Time.Before(since) {
					return fmt.Errorf("node %s: no heartbeat from the new kubelet yet", l.NodeName)
				}
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s not Ready: %s", l.NodeName, cond.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", l.NodeName)
	}
}

// dnsAnswers checks that cluster DNS resolves the kubernetes Service to its ClusterIP.
func dnsAnswers(l layout) func(ctx context.Context) error {
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(l.NodeIP.String(), "53"))
		},
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, err := resolver.LookupHost(ctx, "kubernetes.default.svc.cluster.local")
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a == l.ServiceIP.String() {
				return nil
			}
		}
		return errors.New("kubernetes.default.svc.cluster.local resolved to " + strings.Join(addrs, ",") + ", want " + l.ServiceIP.String())
	}
}
