package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/remocal/kubectl-remocal/test/cluster/pki"
)

// pauseImage is the sandbox image containerd runs for every pod. The harness builds it (no registry
// is reachable) under a name of its own, so it can never be mistaken for the upstream image.
const pauseImage = "remocal.local/pause:1"

// credentials are the certificate paths the components are started with.
type credentials struct {
	CA              string
	APIServer       pki.Paths
	Admin           pki.Paths
	Kubelet         pki.Paths
	APIServerClient pki.Paths // the API server's client certificate towards the kubelet
	SAKey, SAPub    string
}

// ensureCredentials creates whatever certificate or key is missing (or no longer matches the
// layout) and returns all their paths.
func ensureCredentials(l layout) (credentials, error) {
	ca, err := pki.LoadOrCreateCA(l.pkiDir())
	if err != nil {
		return credentials{}, err
	}
	c := credentials{CA: ca.CACertPath()}
	subjects := []struct {
		into *pki.Paths
		s    pki.Subject
	}{
		{&c.APIServer, pki.Subject{
			Name: "apiserver", CommonName: "kube-apiserver", Server: true,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPs:      []net.IP{l.NodeIP, l.NodeIP6, net.IPv4(127, 0, 0, 1).To4(), l.ServiceIP},
		}},
		{&c.Admin, pki.Subject{Name: "admin", CommonName: "remocal-admin", Organization: []string{"system:masters"}}},
		{&c.Kubelet, pki.Subject{Name: "kubelet", CommonName: "system:node:" + l.NodeName, Organization: []string{"system:nodes"}}},
		{&c.APIServerClient, pki.Subject{Name: "apiserver-kubelet-client", CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}}},
	}
	for _, s := range subjects {
		if *s.into, err = ca.Ensure(s.s); err != nil {
			return credentials{}, err
		}
	}
	c.SAKey, c.SAPub, err = pki.EnsureServiceAccountKey(l.pkiDir())
	return c, err
}

// writeConfigs writes every configuration file the components read. They are regenerated on each
// start, so a change of the harness takes effect on the next cluster-up after a cluster-down.
func writeConfigs(l layout, c credentials) error {
	server := fmt.Sprintf("https://%s:%d", l.NodeIP, l.APIServerPort)
	if err := writeKubeconfig(l.adminKubeconfig(), server, c.CA, c.Admin, "remocal-admin"); err != nil {
		return err
	}
	if err := writeKubeconfig(l.kubeletKubeconfig(), server, c.CA, c.Kubelet, "system:node:"+l.NodeName); err != nil {
		return err
	}
	files := map[string]string{
		l.path("containerd.toml"):                            containerdConfig(l),
		l.path("kubelet.yaml"):                               kubeletConfig(l, c),
		l.path("kubelet", "resolv.conf"):                     "", // pods get only cluster DNS, never the host's resolvers
		l.path("kube-proxy.yaml"):                            kubeProxyConfig(l),
		filepath.Join(l.cniConfDir(), "10-remocal.conflist"): cniConfig(l),
		l.path("Corefile"):                                   corefile(l),
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeKubeconfig(path, server, ca string, cred pki.Paths, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["remocal"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: cred.Cert, ClientKey: cred.Key}
	cfg.Contexts["remocal"] = &clientcmdapi.Context{Cluster: "remocal", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "remocal"
	return clientcmd.WriteToFile(*cfg, path)
}

// containerdConfig: a containerd of the cluster's own (own root, state and socket), so it never
// disturbs a containerd the machine may already run. restrict_oom_score_adj is required on these
// machines: the sandbox lacks CAP_SYS_RESOURCE and runc fails without it.
func containerdConfig(l layout) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, l.containerdRoot(), l.containerdState(), l.containerdSocket(), l.path("containerd-opt"), pauseImage, l.cniConfDir())
}

// kubeletConfig: cgroup v1 with cgroupfs is all this kernel offers; image GC is off because
// imported images cannot be pulled again. The pods' logs are kept in the state directory, not in
// the machine's /var/log/pods: a kubelet's container GC removes every directory there whose pod it
// does not know, so two clusters on one machine would delete each other's logs (a sidecar's log
// read then ends before its first line).
func kubeletConfig(l layout, c credentials) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupRoot: %s
podLogsDir: %s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: %s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
serializeImagePulls: false
`, l.CgroupRoot, l.podLogsDir(), l.NodeIP, c.CA, l.containerdSocket(), l.NodeIP, l.path("kubelet", "resolv.conf"))
}

// kubeProxyConfig leaves conntrack sysctls alone (maxPerCore 0): the sandbox may refuse them and
// the defaults are plenty for a test node. With a cluster CIDR of each family, kube-proxy runs
// one proxier per family (iptables and ip6tables).
func kubeProxyConfig(l layout) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:
  maxPerCore: 0
`, l.adminKubeconfig(), l.PodCIDR+","+l.PodCIDR6, l.NodeName, l.NodeIP)
}

// cniConfig: pods only talk to each other, to Services and to the node's address, so no
// masquerading is needed; hairpin lets a pod reach itself through its own Service. host-local
// gives each pod one address of each range: IPv4 first, so it is the pod's primary IP.
func cniConfig(l layout) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "remocal",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}], [{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, l.PodLink, l.PodCIDR, l.PodGateway, l.PodCIDR6, l.PodGateway6, l.path("cni", "ipam"))
}

// corefile serves the cluster domain from the API and answers NXDOMAIN for every other name: the
// cluster must not forward anything off this machine.
func corefile(l layout) string {
	reverse := []string{"in-addr.arpa", "ip6.arpa"}
	return fmt.Sprintf(`cluster.local %[1]s {
    bind %[2]s
    errors
    health 127.0.0.1:%[3]d
    kubernetes cluster.local %[1]s {
        kubeconfig %[4]s
        pods insecure
    }
    cache 5
}
. {
    bind %[2]s
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`, strings.Join(reverse, " "), l.NodeIP, l.CoreDNSHealthPort, l.adminKubeconfig())
}
