package attach

import corev1 "k8s.io/api/core/v1"

// Needs is what a session asks of the pod's network besides connecting out. Each takes
// a capability that a new sidecar is given only for a session that asks for it: one that steals
// nothing has no NET_ADMIN.
type Needs struct {
	// Redirect: steal the pod's ports with nftables (exec --steal and its HTTP filters,
	// port-forward -R), or list and delete the redirect tables (clean): NET_ADMIN.
	Redirect bool
	// Capture: copy a mirrored port's packets (exec's default): NET_RAW. Where capture fails,
	// the sidecar's fallback, mirroring by redirect, would need NET_ADMIN, which such a
	// sidecar lacks: the port's subscription then fails with the sidecar's reason.
	Capture bool
}

// allNeeds is every need: what doctor reports a level to allow.
var allNeeds = Needs{Redirect: true, Capture: true}

// capabilities are what a sidecar for n is given under the privileged level: SYS_PTRACE, to read
// /proc/PID/environ and /proc/PID/root of a target that runs as another user, always.
func (n Needs) capabilities() []corev1.Capability {
	var caps []corev1.Capability
	if n.Redirect {
		caps = append(caps, "NET_ADMIN")
	}
	if n.Capture {
		caps = append(caps, "NET_RAW")
	}
	return append(caps, "SYS_PTRACE")
}

// Use is what a command's session is for.
type Use struct {
	// Needs is what the command asks of the pod's network (steal, mirror): the capabilities a
	// sidecar it adds is given, and that one it reuses must have.
	Needs Needs
	// Inspect marks the sessions of commands that only look (ls, clean): the sidecar's TTL is
	// left as it was when they end.
	Inspect bool
	// Steals names, as the command line spells it ("--steal", "-R"), what makes the session
	// steal the pod's ports; "" when it steals none. Such a session cannot do its work
	// without redirecting (clean, which also needs NET_ADMIN, can say what it finds), so it
	// is refused before anything runs where the sidecar cannot redirect (steal.go).
	Steals string
}
