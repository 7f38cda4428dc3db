package attach

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestContainerID(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "proxy", ContainerID: "containerd://9b8a"},
			{Name: "app", ContainerID: "cri-o://4f1c"},
			{Name: "starting"},
		},
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "mesh", ContainerID: "containerd://77aa"}},
	}}
	for name, want := range map[string]string{"app": "4f1c", "proxy": "9b8a", "starting": "", "absent": "", "mesh": "77aa"} {
		if got := ContainerID(pod, name); got != want {
			t.Errorf("containerID(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestContainerSpec(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "migrate"}, {Name: "mesh", RestartPolicy: &always}},
		Containers:     []corev1.Container{{Name: "app"}},
		EphemeralContainers: []corev1.EphemeralContainer{
			{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger"}},
		},
	}}
	for name, want := range map[string]bool{"app": true, "mesh": true, "migrate": false, "debugger": false, "absent": false} {
		c, ok := ContainerSpec(pod, name)
		if ok != want || ok && c.Name != name {
			t.Errorf("ContainerSpec(%q) = %v, %v; want found %v", name, c, ok, want)
		}
	}
}
