package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// sidecarNamePrefix marks remocal's ephemeral containers; the rest of the name is random because
// ephemeral containers can never be removed and names cannot be reused.
const sidecarNamePrefix = "remocal-"

// sidecarParams is what a new sidecar is started with. Everything the plugin needs to find and
// reuse it later is in its command line, which the pod spec keeps.
type sidecarParams struct {
	Image     string
	Target    string // targetContainerName: shares that container's PID namespace
	ClientPin string // fingerprint of the only client key the sidecar accepts
	Port      int    // QUIC over UDP (direct) and stream-carried QUIC over TCP (port-forward)
	TTL       time.Duration
	Lifetime  time.Duration // the sidecar's --max-lifetime
	Direct    bool          // also listen for QUIC on the pod's addresses, not only on loopback
	Level     podSecurityLevel
	RunAsUser *int64 // the target's user, needed under the restricted level
}

// sidecarContainer builds the ephemeral container for p, with the least privilege the namespace's
// Pod Security level allows:
//   - privileged: NET_ADMIN (to redirect the pod's ports for steal), NET_RAW (to capture the
//     packets of a mirrored port) and SYS_PTRACE (to read /proc/PID/environ and /proc/PID/root
//     of a target that runs as another user);
//   - baseline: the runtime's default capabilities, nothing added (forbidden); root can still
//     read a root target that has no more capabilities than those defaults, another user's
//     target as that user (SETUID and SETGID are defaults), and mirror where the defaults hold
//     NET_RAW (containerd's do);
//   - restricted: non-root as the target's user, no capability, RuntimeDefault seccomp.
//
// It also returns what the level takes away, for one line of warning.
func sidecarContainer(p sidecarParams) (corev1.EphemeralContainer, []string) {
	name := sidecarNamePrefix + rand.String(5)
	args := []string{
		"--client-pin=" + p.ClientPin,
		"--port=" + strconv.Itoa(p.Port),
		"--ttl=" + p.TTL.String(),
		"--max-lifetime=" + p.Lifetime.String(),
		"--direct=" + strconv.FormatBool(p.Direct),
	}
	no, yes := false, true
	root := int64(0)
	sc := &corev1.SecurityContext{
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		AllowPrivilegeEscalation: &no,
	}
	var lost []string
	switch p.Level {
	case psaRestricted:
		sc.RunAsNonRoot = &yes
		sc.RunAsUser = p.RunAsUser
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
		lost = append(lost, "steal and mirror (NET_ADMIN is forbidden)")
		if p.RunAsUser == nil {
			lost = append(lost, "the environment and files of the target (its user is not set in the pod spec)")
		}
	case psaBaseline:
		// runAsUser 0 and runAsNonRoot false explicitly: a pod-level non-root default would
		// otherwise reject the sidecar or run it as a user that cannot read the target's /proc.
		sc.RunAsUser, sc.RunAsNonRoot = &root, &no
		// Keep the runtime's default capabilities: without SYS_PTRACE, the kernel lets us read
		// the target's /proc/PID/environ only if our capabilities are a superset of the
		// target's, and a target usually runs with exactly those defaults; a target that runs
		// as another user the sidecar reaches as that user (SETUID and SETGID are defaults).
		sc.Capabilities = nil
		lost = append(lost, "steal (NET_ADMIN is forbidden; mirror works where the runtime grants NET_RAW by default, as containerd does)")
	default:
		sc.RunAsUser, sc.RunAsNonRoot = &root, &no
		sc.Capabilities.Add = []corev1.Capability{"NET_ADMIN", "NET_RAW", "SYS_PTRACE"}
	}
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:                     name,
			Image:                    p.Image,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			Args:                     args,
			SecurityContext:          sc,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		},
		TargetContainerName: p.Target,
	}, lost
}

// sidecarArg returns the value of --name=VALUE in an existing sidecar's args.
func sidecarArg(args []string, name string) (string, bool) {
	prefix := "--" + name + "="
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, prefix); ok {
			return v, true
		}
	}
	return "", false
}

// reusableSidecar finds a running sidecar in pod that serves the same client key, targets the same
// container and runs the same image (and serves the direct path when needDirect), with at least
// reuseMinLifetime of its maximum lifetime left at now: reusing it skips the image pull and
// container start (warm start). Ephemeral containers cannot be changed, so anything else means
// a new one.
func reusableSidecar(pod *corev1.Pod, image, container, pin string, needDirect bool, now time.Time) (corev1.EphemeralContainer, bool) {
	started := map[string]time.Time{} // of the running ones
	for _, s := range pod.Status.EphemeralContainerStatuses {
		if s.State.Running != nil {
			started[s.Name] = s.State.Running.StartedAt.Time
		}
	}
	for i := len(pod.Spec.EphemeralContainers) - 1; i >= 0; i-- { // newest first
		ec := pod.Spec.EphemeralContainers[i]
		start, running := started[ec.Name]
		if !strings.HasPrefix(ec.Name, sidecarNamePrefix) || !running {
			continue
		}
		if left, ok := lifetimeLeft(ec, start, now); ok && left < reuseMinLifetime {
			continue
		}
		if ec.Image != image || ec.TargetContainerName != container {
			continue
		}
		if direct, _ := sidecarArg(ec.Args, "direct"); needDirect && direct != "true" {
			continue
		}
		if got, _ := sidecarArg(ec.Args, "client-pin"); got == pin {
			return ec, true
		}
	}
	return corev1.EphemeralContainer{}, false
}

// sidecarPort reads the port an existing sidecar listens on.
func sidecarPort(ec corev1.EphemeralContainer) (int, error) {
	v, ok := sidecarArg(ec.Args, "port")
	if !ok {
		return 0, fmt.Errorf("sidecar %s has no --port argument", ec.Name)
	}
	return strconv.Atoi(v)
}
