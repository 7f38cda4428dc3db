package attach

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestContainerID(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
		{Name: "proxy", ContainerID: "containerd://9b8a"},
		{Name: "app", ContainerID: "cri-o://4f1c"},
		{Name: "starting"},
	}}}
	for name, want := range map[string]string{"app": "4f1c", "proxy": "9b8a", "starting": "", "absent": ""} {
		if got := ContainerID(pod, name); got != want {
			t.Errorf("containerID(%q) = %q, want %q", name, got, want)
		}
	}
}
