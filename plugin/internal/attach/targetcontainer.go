package attach

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ContainerSpec is the spec of the pod's container name that a session may target: a regular
// container, or a native sidecar (an init container with restartPolicy Always), which runs
// beside the regular ones for the pod's whole life. A plain init container has ended by the
// time the pod runs, and an ephemeral container is a debugger's, not the app's: neither is one.
func ContainerSpec(pod *corev1.Pod, name string) (*corev1.Container, bool) {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i], true
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.Name == name && isNativeSidecar(c) {
			return c, true
		}
	}
	return nil, false
}

// isNativeSidecar tells an init container that keeps running beside the regular containers.
func isNativeSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// ContainerID is the runtime's ID of the pod's container name as the pod status has it, the
// part after "containerd://" (or "cri-o://", "docker://"); "" when the status has none yet. A
// native sidecar's status is among the init containers'.
func ContainerID(pod *corev1.Pod, name string) string {
	if s, ok := containerStatus(pod, name); ok {
		_, id, _ := strings.Cut(s.ContainerID, "://")
		return id
	}
	return ""
}

// containerStatus is the status of the pod's regular container or native sidecar name.
func containerStatus(pod *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, s := range list {
			if s.Name == name {
				return s, true
			}
		}
	}
	return corev1.ContainerStatus{}, false
}
