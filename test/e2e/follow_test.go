package e2e

import (
	"bufio"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A rollout restart of the target Deployment during a session: the program, which polls the
// echo Service every 200 ms and serves the stolen port 8080, is not restarted; its polling
// recovers within 10 s of the new pod being Ready, the new pod's port 8080 comes to it, and
// stderr shows the switch.
func TestSessionFollowsARolloutRestart(t *testing.T) {
	s := newLayerSetup(t)
	cmd := s.plugin.command(t.Context(), "exec", "deployment/echo", "--steal", "-p", "9094:8080", "--",
		s.layerclient, "poll", "http://"+s.echo.clusterIP+"/", ":9094")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	bg := startBackground(t, cmd)
	defer bg.stop(syscall.SIGINT)
	var mu sync.Mutex
	var pids []string
	var polls []struct {
		at   time.Time
		ok   bool
		line string
	}
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			line := lines.Text()
			mu.Lock()
			switch {
			case strings.HasPrefix(line, "pid "):
				pids = append(pids, line)
			case strings.HasPrefix(line, "poll "):
				polls = append(polls, struct {
					at   time.Time
					ok   bool
					line string
				}{time.Now(), strings.HasPrefix(line, "poll ok "), line})
			}
			mu.Unlock()
		}
	}()
	oldIP := s.echo.podIP
	bg.waitUntil(t, 20*time.Second, func() bool { return strings.HasPrefix(get("http://"+oldIP+":8080/ready"), "local ") },
		func() string { return "the pod's port 8080 was never stolen" })

	restarted := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, restarted.Format(time.RFC3339Nano))
	if _, err := s.env.client.AppsV1().Deployments(s.env.namespace).Patch(s.env.ctx(t), "echo", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	newPod, readyAt := s.env.waitNewReadyPod(t, "app=echo", s.echo.pod, 2*time.Minute)
	t.Logf("pod %s ready %s after the restart", newPod.Name, readyAt.Sub(restarted).Round(time.Millisecond))

	bg.waitUntil(t, 30*time.Second, func() bool { return strings.Contains(bg.stderr.String(), "attached to pod "+newPod.Name) },
		func() string { return "the session never said it moved to " + newPod.Name })
	stderr := bg.stderr.String()
	// The status is read every second: the old pod may be gone before it is seen going.
	if !strings.Contains(stderr, "pod "+s.echo.pod+" is being deleted: following deployment/echo") && !strings.Contains(stderr, "pod "+s.echo.pod+" was deleted: following deployment/echo") {
		t.Errorf("stderr does not say that the old pod %s went away:\n%s", s.echo.pod, stderr)
	}
	t.Logf("the session moved %s after the new pod was Ready", time.Since(readyAt).Round(time.Millisecond))
	bg.waitUntil(t, 10*time.Second-time.Since(readyAt), func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(polls)
		return n > 0 && polls[n-1].ok && polls[n-1].at.After(readyAt)
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		var last []string
		for _, p := range polls[max(0, len(polls)-5):] {
			last = append(last, fmt.Sprintf("%s %s", p.at.Sub(readyAt).Round(time.Millisecond), p.line))
		}
		return fmt.Sprintf("the program's polling did not recover within 10 s of the new pod being Ready; last polls since Ready: %v", last)
	})
	t.Logf("polling recovered %s after the new pod was Ready", time.Since(readyAt).Round(time.Millisecond))
	bg.waitUntil(t, 10*time.Second, func() bool {
		return strings.HasPrefix(get("http://"+newPod.Status.PodIP+":8080/moved"), "local /moved")
	}, func() string { return "the new pod's port 8080 does not come to the program" })
	mu.Lock()
	defer mu.Unlock()
	if len(pids) != 1 {
		t.Errorf("the program started %d times (%v), want once", len(pids), pids)
	}
}

// With a pod/NAME target, the session ends with its pod: one line, the program stopped, a
// non-zero exit, within seconds.
func TestSessionEndsWithItsPod(t *testing.T) {
	s := newLayerSetup(t)
	cmd := s.plugin.command(t.Context(), "exec", "pod/"+s.echo.pod, "--", s.layerclient, "loop", s.echo.clusterIP+":80")
	bg := startBackground(t, cmd)
	bg.waitUntil(t, 20*time.Second, func() bool { return strings.Contains(bg.stderr.String(), "ready") },
		func() string { return "the session never started" })
	if err := s.env.client.CoreV1().Pods(s.env.namespace).Delete(s.env.ctx(t), s.echo.pod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("the plugin ended %s after the delete: %v", time.Since(deleted).Round(time.Millisecond), err)
		if cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("the plugin exited 0 after its pod went away")
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the plugin still runs 15 s after its pod was deleted:\n%s", bg.stderr.String())
	}
	// The pod may be gone before the watch hears of its deletion.
	if stderr := bg.stderr.String(); !strings.Contains(stderr, "pod "+s.echo.pod+" is being deleted: the session ends with it") && !strings.Contains(stderr, "pod "+s.echo.pod+" was deleted: the session ends with it") {
		t.Errorf("stderr does not say that the pod went and the session ended:\n%s", stderr)
	}
}

// waitNewReadyPod waits for a Ready pod matching selector other than old, not being deleted,
// and returns it with the time it was first seen Ready.
func (e *env) waitNewReadyPod(t *testing.T, selector, old string, within time.Duration) (*corev1.Pod, time.Time) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		list, err := e.client.CoreV1().Pods(e.namespace).List(e.ctx(t), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range list.Items {
			if p.Name == old || p.DeletionTimestamp != nil || p.Status.PodIP == "" {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return &list.Items[i], time.Now()
				}
			}
		}
	}
	t.Fatalf("no new Ready pod of %s within %s", selector, within)
	return nil, time.Time{}
}
