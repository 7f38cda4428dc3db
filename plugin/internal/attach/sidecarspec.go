package attach

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
)

// sidecarNamePrefix marks remocal's ephemeral containers; the rest of the name is random because
// ephemeral containers can never be removed and names cannot be reused.
const sidecarNamePrefix = "remocal-"

// IsSidecar tells remocal's sidecars from the pod's other ephemeral containers.
func IsSidecar(ec corev1.EphemeralContainer) bool {
	return strings.HasPrefix(ec.Name, sidecarNamePrefix)
}

// sidecarParams is what a new sidecar is started with. Everything the plugin needs to find and
// reuse it later is in its command line (Flags), which the pod spec keeps.
type sidecarParams struct {
	Image  string
	Target string // targetContainerName: shares that container's PID namespace
	// Flags are the sidecar's command line but its name, which sidecarContainer chooses.
	Flags     sidecarapi.Flags
	Level     SecurityLevel
	RunAsUser *int64 // the target's user, needed under the restricted level
	Needs     Needs
}

// sidecarContainer builds the ephemeral container for p, with the least privilege the namespace's
// Pod Security level allows and the session needs:
//   - privileged: NET_ADMIN (to redirect the pod's ports for steal) when the session redirects,
//     NET_RAW (to capture the packets of a mirrored port) when it mirrors, and SYS_PTRACE (to
//     read /proc/PID/environ and /proc/PID/root of a target that runs as another user);
//   - baseline: the runtime's default capabilities, nothing added (forbidden); root can still
//     read a root target that has no more capabilities than those defaults, another user's
//     target as that user (SETUID and SETGID are defaults), and mirror where the defaults hold
//     NET_RAW (containerd's do);
//   - restricted: non-root as the target's user, no capability, RuntimeDefault seccomp.
//
// It also returns what the level takes away, for one line of warning.
func sidecarContainer(p sidecarParams) (corev1.EphemeralContainer, []string) {
	flags := p.Flags
	flags.Name = sidecarNamePrefix + rand.String(5)
	no, yes := false, true
	root := int64(0)
	sc := &corev1.SecurityContext{
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		AllowPrivilegeEscalation: &no,
	}
	var lost []string
	switch p.Level {
	case LevelRestricted:
		sc.RunAsNonRoot = &yes
		sc.RunAsUser = p.RunAsUser
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
		lost = append(lost, "steal and mirror (NET_ADMIN is forbidden)")
		if p.RunAsUser == nil {
			lost = append(lost, "the environment and files of the target (its user is not set in the pod spec)")
		}
	case LevelBaseline:
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
		sc.Capabilities.Add = p.Needs.capabilities()
	}
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:                     flags.Name,
			Image:                    p.Image,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			Args:                     flags.Args(),
			SecurityContext:          sc,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		},
		TargetContainerName: p.Target,
	}, lost
}

// SidecarSecurity is how a sidecar that Start adds for every need runs at level, for the
// target's user runAsUser (nil when unknown): its security context, and what the level takes
// away, as Start warns of it. doctor reads it so that it cannot disagree with exec.
func SidecarSecurity(level SecurityLevel, runAsUser *int64) (*corev1.SecurityContext, []string) {
	ec, lost := sidecarContainer(sidecarParams{Level: level, RunAsUser: runAsUser, Needs: allNeeds})
	return ec.SecurityContext, lost
}

// SidecarFlags reads the command line of the existing sidecar ec. A flag it lacks (a sidecar
// older than the flag) or that does not parse stays zero: the callers decide on what they read,
// and a sidecar that cannot be read fails when used (SidecarPort).
func SidecarFlags(ec corev1.EphemeralContainer) sidecarapi.Flags {
	f, _ := sidecarapi.ParseArgs(ec.Args)
	return f
}

// sidecarWant is what a session wants of a sidecar it would reuse.
type sidecarWant struct {
	image, container, pin string
	direct                bool // it serves the direct path
	needs                 Needs
	steals                bool // the session steals (Use.Steals)
}

// reusableSidecar finds a running sidecar in pod that serves the same client key, targets the same
// container and runs the same image (and serves the direct path when wanted), has the
// capabilities the session needs (grants), and has at least reuseMinLifetime of its maximum
// lifetime left at now: reusing it skips the image pull and container start (warm start).
// Ephemeral containers cannot be changed, so anything else means a new one, given what this
// session needs; the other stays for its own clients until its TTL.
func reusableSidecar(pod *corev1.Pod, w sidecarWant, now time.Time) (corev1.EphemeralContainer, bool) {
	started := map[string]time.Time{} // of the running ones
	for _, s := range pod.Status.EphemeralContainerStatuses {
		if s.State.Running != nil {
			started[s.Name] = s.State.Running.StartedAt.Time
		}
	}
	for i := len(pod.Spec.EphemeralContainers) - 1; i >= 0; i-- { // newest first
		ec := pod.Spec.EphemeralContainers[i]
		start, running := started[ec.Name]
		if !IsSidecar(ec) || !running {
			continue
		}
		flags := SidecarFlags(ec)
		if left, ok := lifetimeLeft(flags, start, now); ok && left < reuseMinLifetime {
			continue
		}
		if ec.Image != w.image || ec.TargetContainerName != w.container || !grants(ec, w.needs, w.steals) {
			continue
		}
		if w.direct && !flags.Direct {
			continue
		}
		if flags.ClientPin == w.pin {
			return ec, true
		}
	}
	return corev1.EphemeralContainer{}, false
}

// grants tells whether the sidecar ec has the capabilities needs takes. A sidecar added under
// the privileged level lists what it was given (SYS_PTRACE always, so that is how it is told
// apart); one added under baseline or restricted was given none to add, and a new one in the
// same namespace would get no more, so it serves as it is, but for a session that steals:
// it cannot redirect, so such a session goes on to the preflight, which refuses it while the
// level forbids NET_ADMIN and adds a sidecar that can redirect once it allows it.
func grants(ec corev1.EphemeralContainer, needs Needs, steals bool) bool {
	sc := ec.SecurityContext
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, "SYS_PTRACE") {
		return !steals
	}
	for _, c := range needs.capabilities() {
		if !slices.Contains(sc.Capabilities.Add, c) {
			return false
		}
	}
	return true
}

// SidecarPort reads the port an existing sidecar listens on. A sidecar just added need not:
// its port is what the plugin wrote.
func SidecarPort(ec corev1.EphemeralContainer) (int, error) {
	flags, err := sidecarapi.ParseArgs(ec.Args)
	switch {
	case flags.Port != 0:
		return flags.Port, nil
	case err != nil:
		return 0, fmt.Errorf("sidecar %s: %w", ec.Name, err)
	default:
		return 0, fmt.Errorf("sidecar %s has no --port argument", ec.Name)
	}
}
