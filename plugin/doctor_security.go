package plugin

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// securityChecks says what the sidecar that exec would add can do in namespace at nl's level:
// the level and where it comes from, how the sidecar runs there and what that takes away, and
// whether steal and mirror work. All of it is read off the container attach.SidecarSecurity builds for
// that level, so doctor cannot disagree with exec. runAsUser is the target's user (nil when
// unknown: no TARGET, or the pod spec does not say).
func securityChecks(namespace string, nl attach.NamespaceLevel, haveTarget bool, runAsUser *int64) []check {
	sc, lost := attach.SidecarSecurity(nl.Level, runAsUser)

	level := check{Name: "pod security", Status: statusOK}
	switch {
	case nl.Unread != nil:
		level.Status = statusWarn
		level.Detail = fmt.Sprintf("assumed privileged: cannot read namespace %s (%v); the API server decides when the sidecar is added", namespace, nl.Unread)
		level.Fix = fmt.Sprintf("ask for get on namespaces, or ask an admin for the %s label of %s", attach.EnforceLabel, namespace)
	case nl.Labelled:
		level.Detail = fmt.Sprintf("%s (label %s of namespace %s)", nl.Level, attach.EnforceLabel, namespace)
	default:
		level.Detail = fmt.Sprintf("%s: namespace %s has no %s label, so the cluster's default applies (privileged unless an admin set another)", nl.Level, namespace, attach.EnforceLabel)
	}

	rights := check{Name: "sidecar rights", Status: statusOK, Detail: sidecarRights(sc)}
	// What the level takes away besides steal and mirror, which have a row of their own.
	others := slices.DeleteFunc(slices.Clone(lost), func(s string) bool { return strings.Contains(s, "NET_ADMIN") })
	switch {
	case nl.Level == attach.LevelRestricted && !haveTarget:
		// No user to run as yet: what the target will need, not a loss.
		others = nil
		rights.Detail = "runs as the target's user with no capabilities: the target's pod spec must set runAsUser (give a TARGET to check it)"
	case len(others) > 0:
		rights.Status = statusWarn
		rights.Detail += "; it loses " + strings.Join(others, ", and ")
		rights.Fix = "set runAsUser on the target container or its pod, so that the sidecar can run as that user"
	}

	steal := check{Name: "steal/mirror", Status: statusOK, Detail: "a session that steals gets a sidecar with NET_ADMIN to redirect the port, one that mirrors NET_RAW to copy its packets"}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, "NET_ADMIN") {
		steal.Status = statusWarn
		steal.Detail = fmt.Sprintf("steal unavailable: redirecting the pod's ports needs NET_ADMIN, which Pod Security %s does not let a container add", nl.Level)
		if sc.Capabilities == nil {
			// The runtime's defaults: containerd's include NET_RAW, CRI-O's do not.
			steal.Detail += "; mirror copies the port's packets with NET_RAW, where the container runtime grants it by default (containerd does, CRI-O does not)"
		} else {
			steal.Detail += fmt.Sprintf("; mirror unavailable too: copying the port's packets needs NET_RAW, which Pod Security %s drops", nl.Level)
		}
		if len(others) == 0 {
			steal.Detail += "; the environment, outgoing traffic and files still work"
		}
		steal.Fix = fmt.Sprintf("use a namespace that enforces privileged (an admin's choice: kubectl label namespace %s %s=privileged --overwrite)", namespace, attach.EnforceLabel)
	}
	return []check{level, rights, steal}
}

// sidecarRights describes how a sidecar with sc runs: its user and capabilities.
func sidecarRights(sc *corev1.SecurityContext) string {
	user := "root"
	if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
		user = "the image's user"
		if sc.RunAsUser != nil {
			user = fmt.Sprintf("user %d, the target's,", *sc.RunAsUser)
		}
	}
	var caps string
	switch {
	case sc.Capabilities == nil:
		caps = "the runtime's default capabilities: without SYS_PTRACE it reads the environment and files of a target that runs as another user as that user"
	case len(sc.Capabilities.Add) == 0:
		caps = "no capabilities"
	default:
		names := make([]string, len(sc.Capabilities.Add))
		for i, c := range sc.Capabilities.Add {
			names[i] = string(c)
		}
		caps = strings.Join(names, ", ")
		if n := len(names); n > 1 {
			caps = strings.Join(names[:n-1], ", ") + " and " + names[n-1]
		}
	}
	return "runs as " + user + " with " + caps
}
