package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A connection made straight to the sidecar's redirect listener, from outside the pod (this
// machine is the node, as far from the pod's network namespace as another pod), is not a
// redirected one: the sidecar closes it, rather than pass it through to its destination, the
// listener itself, again and again until it ran out of descriptors and stopped accepting with
// the pod's port still redirected to it.
func TestStealSurvivesDirectConnectionsToItsListener(t *testing.T) {
	s := newLayerSetup(t)
	sess := startSteal(t, s)
	stolen := time.Now()
	defer sess.stop(syscall.SIGINT)
	listener := redirectListener(t, s)
	worker := s.env.sidecarWorker(t, s.echo.pod)
	before := openFiles(t, worker)
	addr := net.JoinHostPort(s.echo.podIP, strconv.Itoa(listener))
	for i := range 5 {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			continue // closed before the dial saw it connected
		}
		if err != nil {
			t.Fatalf("connection %d to the listener %s: %v", i, addr, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connection %d to the listener %s: read %v, want it closed at once", i, addr, err)
		}
	}
	time.Sleep(time.Second)
	after := openFiles(t, worker)
	t.Logf("the sidecar's worker has %d descriptors open, %d before the direct connections", after, before)
	if after > before+10 {
		t.Errorf("the sidecar's descriptors grew from %d to %d", before, after)
	}
	// Past the redirect's lease (8 s), which the sidecar keeps renewing while it runs.
	time.Sleep(time.Until(stolen.Add(10 * time.Second)))
	if body := get("http://" + s.echo.podIP + ":8080/still-stolen"); !strings.HasPrefix(body, "local /") {
		t.Fatalf("the stolen port no longer comes to the local server: %q\n%s", body, sess.stderr.String())
	}
}

// redirectListener is the port of the listener the pod's one redirect table sends connections
// to: its table is named after it.
func redirectListener(t *testing.T, s *layerSetup) int {
	t.Helper()
	r := s.plugin.run(t, "clean", "pod/"+s.echo.pod, "--list")
	m := regexp.MustCompile(`remocal_(\d+)\s+8080\s`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("clean --list: exit %d, want a table redirecting 8080:\n%s", r.code, r.stdout)
	}
	port, _ := strconv.Atoi(m[1])
	return port
}

// openFiles counts the descriptors a process of this machine has open.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// Killing every process of the sidecar's container at once, guard included, leaves nothing to
// delete its redirect table; its lease, which the worker no longer renews, lapses, and the
// pod's port reaches the app again by itself.
func TestStealLapsesWhenTheWholeSidecarIsKilled(t *testing.T) {
	s := newLayerSetup(t)
	sess := startSteal(t, s)
	_, id := s.env.newestSidecar(t, s.echo.pod)
	pids := containerProcesses(t, id)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	// Nor may the plugin give the port back: only the lease may.
	sess.stop(syscall.SIGKILL)
	t.Logf("killed the sidecar's processes %v", pids)
	waitApp(t, s, 10*time.Second-time.Since(killed))
	t.Logf("the app answered again %s after SIGKILL of the whole sidecar", time.Since(killed).Round(10*time.Millisecond))
	// The table is left, with its lapsed lease, for the next sidecar or clean to remove.
	r := s.plugin.run(t, "clean", "pod/"+s.echo.pod)
	if r.code != 0 || !regexp.MustCompile(`remocal_\d+\s+8080\s+gone\s+removed`).MatchString(r.stdout) {
		t.Fatalf("clean: exit %d, want the dead sidecar's table removed:\n%s", r.code, r.stdout)
	}
	assertNoRedirects(t, s)
}

// newestSidecar returns the name and container ID of the pod's newest running sidecar.
func (e *env) newestSidecar(t *testing.T, pod string) (name, id string) {
	t.Helper()
	p, err := e.client.CoreV1().Pods(e.namespace).Get(e.ctx(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	for _, s := range p.Status.EphemeralContainerStatuses {
		if strings.HasPrefix(s.Name, "remocal-") && s.State.Running != nil && !s.State.Running.StartedAt.Time.Before(newest) {
			name, id, newest = s.Name, s.ContainerID, s.State.Running.StartedAt.Time
		}
	}
	_, id, _ = strings.Cut(id, "://")
	if id == "" {
		t.Fatalf("no sidecar runs in %s", pod)
	}
	return name, id
}

// containerProcesses lists the processes of this machine in the container's cgroup: the local
// cluster runs containers as host processes.
func containerProcesses(t *testing.T, id string) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); strings.Contains(string(cg), id) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Skip("the sidecar's processes are not on this machine (not the local cluster)")
	}
	return pids
}

// Two users, two sidecars in one pod: the second is refused the port the first steals, and
// told which sidecar has it, rather than each getting some of its connections.
func TestStealOfAPortAnotherSidecarHasIsRefused(t *testing.T) {
	s := newLayerSetup(t)
	first := startSteal(t, s)
	defer first.stop(syscall.SIGINT)
	firstSidecar, _ := s.env.newestSidecar(t, s.echo.pod)
	other := s.env.plugin(t) // its own configuration home, so its own client key and sidecar
	second := other.run(t, "exec", "deployment/echo", "--steal", "-p", "9091:8080", "--", "sh", "-c", s.layerclient+" serve :9091 & sleep 3; kill $!")
	if secondSidecar, _ := s.env.newestSidecar(t, s.echo.pod); secondSidecar == firstSidecar {
		t.Fatalf("the second user reused the first one's sidecar %s", firstSidecar)
	}
	if !strings.Contains(second.stderr, "cannot steal the pod's port 8080") || !strings.Contains(second.stderr, firstSidecar) {
		t.Errorf("the second sidecar was not refused naming the first, %s:\n%s", firstSidecar, second.stderr)
	}
	if body := get("http://" + s.echo.podIP + ":8080/first"); !strings.HasPrefix(body, "local /") {
		t.Fatalf("the first session lost the port: %q", body)
	}
}
