package attach

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// follow reads the target pod's status until ctx ends: at each restart of the target container
// it renews the session, and when the pod goes away it follows a workload to its next pod or
// ends the session (podgone.go). The end of the link (the sidecar killed with the container)
// reads the status at once rather than at the next tick.
func (l *Live) follow(ctx context.Context) {
	tick := time.NewTicker(restartCheckPeriod)
	defer tick.Stop()
	failed := int32(-1) // the restart whose renewal failed, said once
	for {
		s := l.Session()
		linkEnded := s.Done()
		if l.linkEndSeen(s) {
			linkEnded = nil // handled: the tick alone goes on, or the wait would spin
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-linkEnded:
			l.markLinkEnd(s)
		}
		t := s.Target()
		pod, err := l.a.Client.CoreV1().Pods(t.Pod.Namespace).Get(ctx, t.Pod.Name, metav1.GetOptions{})
		why := goneReason(pod, err, t.Pod)
		if why == "" && err != nil {
			klog.V(1).InfoS("read the target pod's status", "pod", t.Pod.Name, "err", err)
			continue
		}
		if why != "" {
			if !l.podGone(ctx, s, why) {
				return
			}
			continue
		}
		status, ok := restarted(pod, t.Container, ContainerID(t.Pod, t.Container))
		if !ok {
			continue
		}
		next, err := l.renew(ctx, s, pod)
		switch {
		case err == nil:
			l.p.Step("target container %s restarted (restart %d); environment and files now come from the new process", t.Container, status.RestartCount)
			if l.onRenew != nil {
				l.onRenew(ctx, next)
			}
		case ctx.Err() == nil && failed != status.RestartCount:
			// The next tick tries again, while the container's new instance runs.
			failed = status.RestartCount
			l.p.Warn("target container %s restarted (restart %d); cannot attach to its new process yet: %v", t.Container, status.RestartCount, err)
		}
	}
}

// linkEndSeen and markLinkEnd remember that the end of s's link was handled, so that the
// closed channel does not wake follow again.
func (l *Live) linkEndSeen(s *Session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endSeen == s
}

func (l *Live) markLinkEnd(s *Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endSeen = s
}

// restarted returns the status of pod's container name when it runs an instance other than
// known, the ID the session serves: the container restarted, and its new instance is up.
func restarted(pod *corev1.Pod, name, known string) (corev1.ContainerStatus, bool) {
	status, ok := containerStatus(pod, name)
	if !ok || status.State.Running == nil || known == "" {
		return status, false
	}
	id := ContainerID(pod, name)
	return status, id != "" && id != known
}

// renew moves the session from s to the target container's new instance in pod, and makes
// the new session the one in use: through a new sidecar, or, where s's sidecar lives on
// (shareProcessNamespace), by naming the new instance to it. The ports s took are taken again.
func (l *Live) renew(ctx context.Context, s *Session, pod *corev1.Pod) (*Session, error) {
	old := s.Target()
	t := &Target{Pod: pod, Container: old.Container, Via: old.Via}
	if sharesPIDNamespace(pod) && s.Err() == nil {
		if err := s.NameTarget(ctx, ContainerID(pod, t.Container)); err != nil {
			return nil, err
		}
		// The same link, for the new instance: nothing to take again, nothing to close.
		next := *s
		next.target = t
		l.replace(&next)
		return &next, nil
	}
	// The restart is one line: the steps of the sidecar's start were said at the session's.
	quiet := progress.New(io.Discard)
	added, err := l.a.Add(ctx, quiet, t, l.id.Fingerprint())
	if err != nil {
		return nil, err
	}
	next, how, err := l.a.connect(ctx, added.Pod, added.Sidecar.Name, added.Port, l.id)
	if err != nil {
		return nil, err
	}
	klog.V(1).InfoS("connected to the restarted container's sidecar", "sidecar", added.Sidecar.Name, "path", how)
	t.Pod = added.Pod
	if next, err = next.ready(ctx, l.p, t, added.Sidecar); err != nil {
		return nil, err
	}
	l.takePortsAgain(ctx, next)
	// The old link went with its sidecar: there is nothing to give back, nor to wait for.
	_ = s.Close()
	return next, nil
}

// sharesPIDNamespace tells whether the pod's containers share one PID namespace, whose first
// process is the pod's pause: there a container's restart leaves the sidecar running.
func sharesPIDNamespace(pod *corev1.Pod) bool {
	return pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace
}

// takePortsAgain takes the ports the session holds through next, and makes next the session in
// use, with no subscription in between.
func (l *Live) takePortsAgain(ctx context.Context, next *Session) {
	l.subMu.Lock()
	var lost []string
	for port, sub := range l.subs {
		if err := next.Subscribe(ctx, port, sub); err != nil {
			delete(l.subs, port)
			lost = append(lost, fmt.Sprintf("%d (%v)", port, ExplainMissingFeature(err)))
		}
	}
	l.replace(next)
	l.subMu.Unlock()
	if len(lost) > 0 {
		l.p.Warn("the new sidecar could not take the pod's ports %s: they are the pod app's again", strings.Join(lost, ", "))
	}
}
