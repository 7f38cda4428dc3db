package attach

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// A session that steals has no use without its redirect, so where the sidecar cannot redirect
// it is refused before anything runs, in one line, rather than warned of once its program
// listens.

// refuseSteal fails a session that steals in namespace when its Pod Security level forbids
// NET_ADMIN (baseline, restricted): a new sidecar there could not redirect either.
func (u Use) refuseSteal(namespace string, level SecurityLevel) error {
	if u.Steals == "" || level == LevelPrivileged {
		return nil
	}
	return usererr.New(fmt.Sprintf("%s needs the NET_ADMIN capability to redirect the pod's ports, which namespace %s's Pod Security level %q forbids; run without %s, or ask a cluster admin for the privileged level (%s=privileged)",
		u.Steals, namespace, level, u.Steals, EnforceLabel))
}

// checkRedirect fails a session that steals when its sidecar ec says it cannot redirect (it
// lacks NET_ADMIN), naming the namespace's level when that is why. Only a sidecar of this
// version says so; an older one's steal fails when the port is subscribed.
func (a *Attacher) checkRedirect(ctx context.Context, sess *Session, pod *corev1.Pod, ec corev1.EphemeralContainer) error {
	if a.Use.Steals == "" || sess.CanRedirect() {
		return nil
	}
	level, err := namespaceSecurityLevel(ctx, a.Client, pod.Namespace)
	if err == nil {
		if err := a.Use.refuseSteal(pod.Namespace, level); err != nil {
			return err
		}
	}
	return usererr.New(fmt.Sprintf("%s needs the sidecar to redirect the pod's ports, and sidecar %s cannot: it does not hold NET_ADMIN, which its container runtime or an admission policy took away; run without %s",
		a.Use.Steals, ec.Name, a.Use.Steals))
}
