package attach

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The target's pod goes away: a rollout replaces it, a user deletes it, a node drains. A
// workload target follows to the pod kubectl exec would pick now; a pod/NAME target, or
// --no-follow, ends the session with the pod, which is the program's whole world.

// nextPodWait bounds the wait for a ready pod of the workload after the session's went away: a
// rollout's new pod is usually ready before the old one is deleted, a recreated one within a
// minute.
const nextPodWait = 2 * time.Minute

// goneReason says how the target's pod, read again as p (err the read's error), went away, or
// "" if it did not (or could not be read).
func goneReason(p *corev1.Pod, err error, pod *corev1.Pod) string {
	switch {
	case apierrors.IsNotFound(err):
		return "was deleted"
	case err != nil:
		return ""
	case p.UID != pod.UID:
		return "was replaced by a pod of the same name"
	case p.DeletionTimestamp != nil:
		return "is being deleted"
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return "ended (" + string(p.Status.Phase) + ")"
	}
	return ""
}

// podGone handles the end of s's pod, which went as why says: it moves the session to the
// workload's next pod, or ends it. It reports whether the session goes on.
func (l *Live) podGone(ctx context.Context, s *Session, why string) bool {
	t := s.Target()
	if !l.follows {
		reason := "--no-follow"
		if t.Via == "" {
			reason = "the target was the pod itself; a workload target, deployment/NAME or the like, goes on to its next pod"
		}
		l.end(fmt.Errorf("pod %s %s: the session ends with it (%s)", t.Pod.Name, why, reason))
		return false
	}
	l.p.Warn("pod %s %s: following %s to its next pod", t.Pod.Name, why, t.Via)
	if err := l.move(ctx, s); err != nil {
		if ctx.Err() == nil {
			l.end(err)
		}
		return false
	}
	return true
}

// move attaches to the workload's next pod, takes the session's ports there, and makes it the
// session's; the old pod's session closes, and the connections through it end, as with a
// restart of the pod.
func (l *Live) move(ctx context.Context, s *Session) error {
	next, err := l.a.NextPod(ctx, s.Target(), nextPodWait)
	if err != nil {
		return fmt.Errorf("cannot follow %s: %w", s.Target().Via, err)
	}
	sess, err := l.a.StartTarget(ctx, l.p, next)
	if err != nil {
		return fmt.Errorf("cannot attach to pod %s of %s: %w", next.Pod.Name, next.Via, err)
	}
	l.takePortsAgain(ctx, sess)
	_ = s.Close()
	l.p.Step("attached to pod %s: the program's new connections and the pod's ports and files are its", next.Pod.Name)
	if l.onRenew != nil {
		l.onRenew(ctx, sess)
	}
	return nil
}
