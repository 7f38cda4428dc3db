package attach

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRestarted(t *testing.T) {
	const old, renewed = "0a0a", "0b0b"
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name   string
		status corev1.ContainerStatus
		native bool // the target is a native sidecar, its status among the init containers'
		want   bool
	}{
		{name: "the same instance", status: corev1.ContainerStatus{ContainerID: "containerd://" + old, State: running}},
		{name: "a new instance running", status: corev1.ContainerStatus{ContainerID: "containerd://" + renewed, RestartCount: 1, State: running}, want: true},
		{name: "a native sidecar's new instance", status: corev1.ContainerStatus{ContainerID: "containerd://" + renewed, RestartCount: 1, State: running}, native: true, want: true},
		// The sidecar needs the instance running to share its namespaces.
		{name: "restarting, not yet up", status: corev1.ContainerStatus{ContainerID: "containerd://" + old, RestartCount: 1, State: waiting}},
		{name: "no ID yet", status: corev1.ContainerStatus{RestartCount: 1, State: running}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.status.Name = "app"
			pod := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{tt.status}}}
			if tt.native {
				pod.Spec.InitContainers = []corev1.Container{{Name: "app", RestartPolicy: &always}}
				pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses = pod.Status.ContainerStatuses, nil
			}
			status, got := restarted(pod, "app", old)
			if got != tt.want {
				t.Fatalf("restarted = %v, want %v", got, tt.want)
			}
			if got && status.RestartCount != tt.status.RestartCount {
				t.Errorf("restart count %d, want %d", status.RestartCount, tt.status.RestartCount)
			}
		})
	}
	if _, got := restarted(&corev1.Pod{}, "app", ""); got {
		t.Error("restarted with no status")
	}
}
