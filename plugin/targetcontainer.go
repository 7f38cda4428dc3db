package plugin

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// containerID is the runtime's ID of the pod's container name as the pod status has it, the
// part after "containerd://" (or "cri-o://", "docker://"); "" when the status has none yet.
func containerID(pod *corev1.Pod, name string) string {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == name {
			_, id, _ := strings.Cut(s.ContainerID, "://")
			return id
		}
	}
	return ""
}

// nameTarget tells the sidecar which running container is the target, so that in a pod that
// shares one PID namespace among its containers it serves that container's process and not the
// lowest PID it sees (maybe a mesh proxy). The ID is the container's instance, which changes
// when it restarts, so each session sends the one it read from the pod. A sidecar that does not
// know the request (an older version), or an ID the status does not have yet, leaves the
// sidecar's own choice.
func (s *session) nameTarget(id string) error {
	if id == "" || !slices.Contains(s.hello.Features, wire.FeatureTarget) {
		return nil
	}
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if err := wire.WriteMessage(s.control, wire.Target{ContainerID: id}); err != nil {
		return fmt.Errorf("name the target container: %w", err)
	}
	msg, err := s.reader.ReadMessage()
	if err != nil {
		return fmt.Errorf("name the target container: %w", err)
	}
	switch m := msg.(type) {
	case wire.TargetReply:
		return nil
	case wire.Error:
		return &userError{msg: "the sidecar cannot find the target container's process: " + m.Reason, cause: m}
	default:
		s.outOfStep()
		return fmt.Errorf("name the target container: unexpected reply %T", msg)
	}
}
