package plugin

import (
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestContainerID(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
		{Name: "proxy", ContainerID: "containerd://9b8a"},
		{Name: "app", ContainerID: "cri-o://4f1c"},
		{Name: "starting"},
	}}}
	for name, want := range map[string]string{"app": "4f1c", "proxy": "9b8a", "starting": "", "absent": ""} {
		if got := containerID(pod, name); got != want {
			t.Errorf("containerID(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestSessionNamesTheTarget(t *testing.T) {
	var mu sync.Mutex
	var got []wire.Message
	requests := func() []wire.Message {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	answer := func(w io.Writer, req wire.Message) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		if m, ok := req.(wire.Target); ok && m.ContainerID == "gone" {
			_ = wire.WriteMessage(w, wire.Error{Code: wire.ErrCodeProtocol, Reason: "no process of container gone"})
			return
		}
		_ = wire.WriteMessage(w, wire.TargetReply{PID: 12})
	}
	s := fakeSidecar{features: clientFeatures(false), answer: answer}.session(t)
	if err := s.nameTarget("4f1c"); err != nil {
		t.Fatal(err)
	}
	if r := requests(); !slices.Equal(r, []wire.Message{wire.Target{ContainerID: "4f1c"}}) {
		t.Errorf("the sidecar got %#v", r)
	}
	if err := s.nameTarget("gone"); !isUserError(err) || !strings.Contains(err.Error(), "no process of container gone") {
		t.Errorf("a refused ID: %v, want a user error with the sidecar's reason", err)
	}

	// An older sidecar, or no ID in the status: nothing is asked, today's choice stays.
	mu.Lock()
	got = nil
	mu.Unlock()
	old := fakeSidecar{features: []string{wire.FeatureEnv}, answer: answer}.session(t)
	if err := old.nameTarget("4f1c"); err != nil || len(requests()) != 0 {
		t.Errorf("older sidecar: %v, requests %#v; want none", err, requests())
	}
	if err := s.nameTarget(""); err != nil || len(requests()) != 0 {
		t.Errorf("no ID: %v, requests %#v; want none", err, requests())
	}
}
