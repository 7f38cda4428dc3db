package attach

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ContainerID is the runtime's ID of the pod's container name as the pod status has it, the
// part after "containerd://" (or "cri-o://", "docker://"); "" when the status has none yet.
func ContainerID(pod *corev1.Pod, name string) string {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == name {
			_, id, _ := strings.Cut(s.ContainerID, "://")
			return id
		}
	}
	return ""
}
