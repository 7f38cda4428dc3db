package sidecar

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	appID   = "4f1cd2b0a7e94c1f9a1e0c3b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
	proxyID = "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"
	otherID = "0000000000000000000000000000000000000000000000000000000000000001"
)

// proc is one process of a fake /proc.
type proc struct {
	pid                   int
	comm, cgroup, environ string
}

// fakeProcTree is a /proc with the given processes.
func fakeProcTree(t *testing.T, procs ...proc) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.pid))
		if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"comm": p.comm + "\n", "cgroup": p.cgroup, "environ": p.environ} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// sharedPod is a pod with shareProcessNamespace: the pause process, a mesh proxy started first
// (the lowest PID after pause), then the app and its child. The cgroup lines are as a sidecar in
// its own cgroup namespace reads them under containerd's systemd driver.
func sharedPod(t *testing.T) string {
	scope := func(id string) string {
		return "0::/../cri-containerd-" + id + ".scope\n"
	}
	return fakeProcTree(t,
		proc{pid: 1, comm: "pause", cgroup: scope("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"), environ: "PAUSE=1\x00"},
		proc{pid: 7, comm: "envoy", cgroup: scope(proxyID), environ: "PROXY=1\x00"},
		proc{pid: 12, comm: "app", cgroup: scope(appID), environ: "APP=1\x00"},
		proc{pid: 15, comm: "worker", cgroup: scope(appID), environ: "APP=1\x00CHILD=1\x00"},
	)
}

func TestContainerPID(t *testing.T) {
	shared := sharedPod(t)
	if pid, err := targetPID(shared); err != nil || pid != 7 {
		t.Fatalf("without an ID: pid %d, %v; want 7, the proxy (the guess this test is about)", pid, err)
	}
	if pid, err := containerPID(shared, appID); err != nil || pid != 12 {
		t.Errorf("the app's ID: pid %d, %v; want 12", pid, err)
	}
	if pid, err := containerPID(shared, proxyID); err != nil || pid != 7 {
		t.Errorf("the proxy's ID: pid %d, %v; want 7", pid, err)
	}
	if _, err := containerPID(shared, otherID); !errors.Is(err, errNoContainer) {
		t.Errorf("an ID no process has, in a shared namespace: %v, want errNoContainer", err)
	}

	// In the target's own PID namespace, a runtime whose cgroups do not show the ID still
	// leaves only the target to find.
	own := fakeProcTree(t, proc{pid: 1, comm: "app", cgroup: "0::/\n", environ: "APP=1\x00"})
	if pid, err := containerPID(own, appID); err != nil || pid != 1 {
		t.Errorf("own namespace, no cgroup match: pid %d, %v; want 1", pid, err)
	}
}

func TestInContainerCgroupFormats(t *testing.T) {
	for name, cgroup := range map[string]string{
		"v2 systemd containerd": "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + appID + ".scope\n",
		"v2 systemd cri-o":      "0::/kubepods.slice/kubepods-pod1234.slice/crio-" + appID + ".scope\n",
		"v2 cgroupfs":           "0::/kubepods/besteffort/pod1234/" + appID + "\n",
		"v2 in a cgroup ns":     "0::/../" + appID + "\n",
		"v1 systemd docker":     "12:pids:/kubepods.slice/docker-" + appID + ".scope\n11:memory:/kubepods.slice/docker-" + appID + ".scope\n",
		"v1 cgroupfs":           "3:cpu,cpuacct:/kubepods/pod1234/" + appID + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := fakeProcTree(t, proc{pid: 3, cgroup: cgroup})
			if !inContainer(root, 3, appID) {
				t.Errorf("%q does not match its container", cgroup)
			}
			if inContainer(root, 3, otherID) {
				t.Errorf("%q matches another container", cgroup)
			}
		})
	}
}

func TestTargetProcess(t *testing.T) {
	root := sharedPod(t)
	var tp targetProcess
	if pid, _ := tp.pid(root); pid != 7 {
		t.Errorf("no ID named: pid %d, want today's guess, 7", pid)
	}
	for _, bad := range []string{"", "kubepods", "4f1cd2b0a7e9", strings.ToUpper(appID), "../" + appID} {
		if _, err := tp.name(root, bad); err == nil {
			t.Errorf("name(%q) accepted", bad)
		}
	}
	if _, err := tp.name(root, otherID); err == nil {
		t.Error("named an ID that no process has")
	}
	if pid, err := tp.name(root, appID); err != nil || pid != 12 {
		t.Fatalf("name(app) = %d, %v; want 12", pid, err)
	}
	if pid, err := tp.pid(root); err != nil || pid != 12 {
		t.Errorf("after naming: pid %d, %v; want 12", pid, err)
	}
	// A refused ID leaves the one known before.
	_, _ = tp.name(root, otherID)
	if pid, _ := tp.pid(root); pid != 12 {
		t.Errorf("after a refused name: pid %d, want 12", pid)
	}
}

// Over the wire: a client that names the container gets the app's environment, not the
// proxy's; one that does not (an older plugin) gets today's guess.
func TestServerTargetByContainerID(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, sharedPod(t))
	request := func(control *wire.Reader, w interface{ Write([]byte) (int, error) }, m wire.Message) wire.Message {
		t.Helper()
		if err := wire.WriteMessage(w, m); err != nil {
			t.Fatal(err)
		}
		reply, err := control.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	for _, tt := range []struct {
		name    string
		target  string
		wantEnv []string
	}{
		{name: "old client", wantEnv: []string{"PROXY=1"}},
		{name: "named", target: appID, wantEnv: []string{"APP=1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := dialSidecar(t, client, port, pin)
			stream, err := conn.OpenStreamSync(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			r := wire.NewReader(stream)
			hello := request(r, stream, wire.Hello{Version: wire.Version, Features: []string{wire.FeatureEnv, wire.FeatureTarget}})
			if h, ok := hello.(wire.HelloReply); !ok || !slices.Contains(h.Features, wire.FeatureTarget) {
				t.Fatalf("hello reply %#v does not offer %q", hello, wire.FeatureTarget)
			}
			if tt.target != "" {
				if reply := request(r, stream, wire.Target{ContainerID: otherID}); !isWireError(reply) {
					t.Errorf("an ID no process has: %#v, want an Error", reply)
				}
				if reply := request(r, stream, wire.Target{ContainerID: tt.target}); reply != (wire.TargetReply{PID: 12}) {
					t.Fatalf("target reply %#v, want pid 12", reply)
				}
			}
			env, ok := request(r, stream, wire.EnvRequest{}).(wire.EnvReply)
			if !ok || !slices.Equal(env.Environ, tt.wantEnv) {
				t.Errorf("environment %#v, want %q", env, tt.wantEnv)
			}
		})
	}
}

func isWireError(m wire.Message) bool {
	_, ok := m.(wire.Error)
	return ok
}
