package plugin

import corev1 "k8s.io/api/core/v1"

// sidecarNeeds is what a session asks of the pod's network besides connecting out. Each takes
// a capability that a new sidecar is given only for a session that asks for it: one that steals
// nothing has no NET_ADMIN.
type sidecarNeeds struct {
	// redirect: steal the pod's ports with nftables (exec --steal and its HTTP filters,
	// port-forward -R), or list and delete the redirect tables (clean): NET_ADMIN.
	redirect bool
	// capture: copy a mirrored port's packets (exec's default): NET_RAW. Where capture fails,
	// the sidecar's fallback, mirroring by redirect, would need NET_ADMIN, which such a
	// sidecar lacks: the port's subscription then fails with the sidecar's reason.
	capture bool
}

// allNeeds is every need: what doctor reports a level to allow.
var allNeeds = sidecarNeeds{redirect: true, capture: true}

// capabilities are what a sidecar for n is given under the privileged level: SYS_PTRACE, to read
// /proc/PID/environ and /proc/PID/root of a target that runs as another user, always.
func (n sidecarNeeds) capabilities() []corev1.Capability {
	var caps []corev1.Capability
	if n.redirect {
		caps = append(caps, "NET_ADMIN")
	}
	if n.capture {
		caps = append(caps, "NET_RAW")
	}
	return append(caps, "SYS_PTRACE")
}

// sidecarNeeds is what the incoming-traffic flags ask: a copy of the ports the command listens
// on (mirror, the default), the connections themselves (steal), or nothing (--no-incoming, or
// no command, only --env-file).
func (o *ExecOptions) sidecarNeeds() sidecarNeeds {
	switch {
	case len(o.command) == 0 || o.NoIncoming:
		return sidecarNeeds{}
	case o.Steal:
		return sidecarNeeds{redirect: true}
	}
	return sidecarNeeds{capture: true}
}
