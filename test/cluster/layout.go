package main

import (
	"net"
	"os"
	"path/filepath"

	"github.com/remocal/kubectl-remocal/test/cluster/daemon"
	"github.com/remocal/kubectl-remocal/test/cluster/kubebuild"
)

// coreDNSVersion is the CoreDNS the harness builds from the Go module proxy; the Kubernetes
// version is kubebuild.KubernetesVersion().
const coreDNSVersion = "v1.12.1"

// layout is where the cluster lives on this machine and how it is addressed. The cluster is a
// machine resource (ports, links, one containerd), so its state is machine-wide, never in a
// checkout: a second clone finds and reuses the running cluster.
type layout struct {
	StateDir string // certificates, configs, etcd data, kubelet root, logs, PID files
	RunDir   string // containerd's socket and runtime state (volatile)
	CacheDir string // built binaries, keyed by version

	NodeName   string
	NodeLink   string // bridge that carries the node's addresses
	PodLink    string // CNI bridge of the pods
	CgroupRoot string // the kubelet's cgroupRoot: the parent of its kubepods cgroups

	// The cluster is dual-stack, IPv4 first: a pod's primary IP, a Service's default family and
	// the kubernetes Service are IPv4, and an IPv6 Service asks for it (ipFamilies: [IPv6]).
	NodeIP     net.IP
	PodCIDR    string
	PodGateway string
	ServiceIP  net.IP // first address of the service range: the kubernetes Service
	Services   string
	TestBed    string // the whole reserved range, routed onto the node link so that none of it leaves the machine

	NodeIP6     net.IP
	PodCIDR6    string
	PodGateway6 string
	Services6   string
	TestBed6    string // as TestBed, for IPv6: the benchmarking range 2001:2::/48

	EtcdPort, EtcdPeerPort int
	APIServerPort          int
	CoreDNSHealthPort      int
}

// newLayout returns the default layout. REMOCAL_CLUSTER_STATE and REMOCAL_CLUSTER_CACHE move the
// state and the build cache (a cold build can be measured with an empty cache dir).
//
// REMOCAL_CLUSTER_STATE, REMOCAL_CLUSTER_RUN and REMOCAL_CLUSTER_CGROUP_ROOT together let a second
// cluster run beside the default one when it is started in a network namespace of its own
// (`nsenter --net=/run/netns/NAME`): links, addresses, ports and iptables are per namespace, and
// the cgroup root keeps each kubelet from taking the other's pods for orphans and killing them.
func newLayout() layout {
	state := envOr("REMOCAL_CLUSTER_STATE", "/var/lib/remocal/cluster")
	// Every address is in 198.18.0.0/15, the range reserved for network test beds, or in
	// 2001:2::/48, IPv6's benchmarking range, and both ranges are routed onto the node's own
	// link, so nothing the cluster does can reach a real network: a ClusterIP kube-proxy has not
	// programmed yet, or any address of the ranges nothing here owns, goes nowhere instead of out
	// of the default route.
	return layout{
		StateDir:          state,
		RunDir:            envOr("REMOCAL_CLUSTER_RUN", "/run/remocal/cluster"),
		CacheDir:          kubebuild.DefaultCacheDir(),
		NodeName:          "remocal",
		NodeLink:          "remocal-node",
		PodLink:           "remocal-cni",
		CgroupRoot:        envOr("REMOCAL_CLUSTER_CGROUP_ROOT", "/"),
		NodeIP:            net.ParseIP("198.18.0.1").To4(),
		PodCIDR:           "198.18.64.0/18",
		PodGateway:        "198.18.64.1",
		ServiceIP:         net.ParseIP("198.19.0.1").To4(),
		Services:          "198.19.0.0/16",
		TestBed:           "198.18.0.0/15",
		NodeIP6:           net.ParseIP("2001:2::1"),
		PodCIDR6:          "2001:2:0:100::/64",
		PodGateway6:       "2001:2:0:100::1",
		Services6:         "2001:2:0:1::/112", // the API server takes no IPv6 range wider than /108
		TestBed6:          "2001:2::/48",
		EtcdPort:          32379,
		EtcdPeerPort:      32380,
		APIServerPort:     6443,
		CoreDNSHealthPort: 32381,
	}
}

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.StateDir}, elem...)...)
}

func (l layout) pkiDir() string            { return l.path("pki") }
func (l layout) adminKubeconfig() string   { return l.path("admin.kubeconfig") }
func (l layout) kubeletKubeconfig() string { return l.path("kubelet.kubeconfig") }
func (l layout) kubeletRoot() string       { return l.path("kubelet") }
func (l layout) podLogsDir() string        { return l.path("pod-logs") }
func (l layout) cniConfDir() string        { return l.path("cni", "net.d") }
func (l layout) containerdSocket() string  { return filepath.Join(l.RunDir, "containerd.sock") }
func (l layout) containerdRoot() string    { return l.path("containerd") }
func (l layout) containerdState() string   { return filepath.Join(l.RunDir, "containerd") }
func (l layout) imagesDir() string         { return l.path("images") }
func (l layout) lockFile() string          { return l.StateDir + ".lock" }

func (l layout) daemons() daemon.Dirs {
	return daemon.Dirs{PIDs: l.path("pids"), Logs: l.path("logs")}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
