// Package follow keeps a session on its target while the target's pods come and go: when the
// pod the session is attached to goes away (a rollout, a delete, an eviction), it says so, and,
// for a workload target, attaches to the pod kubectl exec would pick now and moves the session
// there, while the program runs on. Its connections through the old pod end, as a restart of
// the pod would end them; new ones, the stolen and mirrored ports, and the pod's files go to the
// new pod.
package follow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// nextPodWait bounds the wait for a ready pod of the workload after the session's went away: a
// rollout's new pod is usually ready before the old one is deleted, a recreated one within a
// minute.
const nextPodWait = 2 * time.Minute

// Session is a session that follows its target. It holds the sidecar session of the pod the
// target is on now; the methods of the program's traffic and files go to that one.
type Session struct {
	attacher *attach.Attacher
	client   kubernetes.Interface
	p        *progress.Printer
	// follows is false for a pod/NAME target or --no-follow: the session ends with its pod.
	follows bool
	// env is the pod's environment the program started with.
	env []string

	mu      sync.Mutex
	current *attach.Session
	// moved are called, in order, with the session of each new pod before the old one closes.
	moved []func(*attach.Session)

	ended chan struct{}
	err   error // why the session ended, once ended is closed
}

// New follows the target of sess, attached by a, from now on; env is the environment of sess's
// pod that the program took. follows says whether a pod gone is followed or ends the session.
func New(a *attach.Attacher, p *progress.Printer, sess *attach.Session, env []string, follows bool) *Session {
	return &Session{attacher: a, client: a.Client, p: p, follows: follows && sess.Target().Via != "", env: env, current: sess, ended: make(chan struct{})}
}

// Current is the sidecar session of the pod the target is on now.
func (s *Session) Current() *attach.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// OnMove has f called with the session of each pod the target moves to, before the old pod's
// session closes: to subscribe the program's ports there.
func (s *Session) OnMove(f func(*attach.Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moved = append(s.moved, f)
}

// Ended is closed when the session cannot go on: its pod went away and was not followed.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// Err says why the session ended, once Ended is closed.
func (s *Session) Err() error {
	<-s.ended
	return s.err
}

// Close closes the current sidecar session.
func (s *Session) Close() {
	s.Current().Close()
}

// Run watches the target's pod, and follows it or ends the session when it goes away, until
// ctx ends.
func (s *Session) Run(ctx context.Context) {
	for {
		cur := s.Current()
		t := cur.Target()
		why, err := podGone(ctx, s.client, t.Pod)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.end(fmt.Errorf("cannot watch pod %s any more: %w", t.Pod.Name, err))
			return
		}
		if !s.follows {
			s.end(fmt.Errorf("pod %s %s: the session ends with it (%s)", t.Pod.Name, why, s.unfollowed(t)))
			return
		}
		s.p.Warn("pod %s %s: following %s to its next pod", t.Pod.Name, why, t.Via)
		if err := s.move(ctx, cur); err != nil {
			if ctx.Err() == nil {
				s.end(err)
			}
			return
		}
	}
}

// unfollowed says why the session does not follow t's workload to another pod.
func (s *Session) unfollowed(t *attach.Target) string {
	if t.Via == "" {
		return "the target was the pod itself; a workload target, deployment/NAME or the like, goes on to its next pod"
	}
	return "--no-follow"
}

// move attaches to the workload's next pod and makes it the session's.
func (s *Session) move(ctx context.Context, old *attach.Session) error {
	next, err := s.attacher.NextPod(ctx, old.Target(), nextPodWait)
	if err != nil {
		return fmt.Errorf("cannot follow %s: %w", old.Target().Via, err)
	}
	sess, err := s.attacher.StartTarget(ctx, s.p, next)
	if err != nil {
		return fmt.Errorf("cannot attach to pod %s of %s: %w", next.Pod.Name, next.Via, err)
	}
	if env, err := sess.Environ(ctx); err == nil {
		if changed := changedNames(s.env, env); len(changed) > 0 {
			s.p.Warn("pod %s's environment differs in %s: the program keeps the values it started with", next.Pod.Name, strings.Join(changed, ", "))
		}
	}
	s.mu.Lock()
	s.current = sess
	moved := slices.Clone(s.moved)
	s.mu.Unlock()
	for _, f := range moved {
		f(sess)
	}
	old.Close() // the program's connections through the old pod end, as with its restart
	s.p.Step("attached to pod %s: the program's new connections and the pod's ports and files are its", next.Pod.Name)
	return nil
}

func (s *Session) end(err error) {
	s.err = err
	close(s.ended)
}

// podGone waits until pod is deleted, is being deleted, or has ended, and says which: it reads
// the pod, then watches it from there, again each time the watch ends (the API server ends
// watches after a while). Only a failure to read it is an error.
func podGone(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) (string, error) {
	pods := client.CoreV1().Pods(pod.Namespace)
	for ctx.Err() == nil {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return "was deleted", nil
		case err != nil && ctx.Err() == nil:
			return "", err
		case err != nil:
			return "", nil
		}
		if why := goneReason(p, pod); why != "" {
			return why, nil
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", pod.Name).String(),
			ResourceVersion: p.ResourceVersion,
		})
		if apierrors.IsForbidden(err) {
			// A user who may get pods but not watch them: look every second.
			return pollGone(ctx, client, pod)
		}
		if err != nil {
			continue // read it again, and watch again
		}
		why := watchGone(ctx, w, pod)
		w.Stop()
		if why != "" {
			return why, nil
		}
	}
	return "", nil
}

// watchGone reads w until pod is gone (and says how), or w or ctx ends ("").
func watchGone(ctx context.Context, w watch.Interface, pod *corev1.Pod) string {
	for {
		select {
		case <-ctx.Done():
			return ""
		case ev, ok := <-w.ResultChan():
			if !ok {
				return ""
			}
			switch ev.Type {
			case watch.Deleted:
				return "was deleted"
			case watch.Added, watch.Modified:
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Name == pod.Name {
					if why := goneReason(p, pod); why != "" {
						return why
					}
				}
			}
		}
	}
}

// pollGone is podGone by a Get every second.
func pollGone(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) (string, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case <-tick.C:
		}
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return "was deleted", nil
		case err == nil && goneReason(p, pod) != "":
			return goneReason(p, pod), nil
		}
	}
}

// goneReason says how p, the pod of pod's name as it is now, is gone, or "" if it is not.
func goneReason(p, pod *corev1.Pod) string {
	switch {
	case p.UID != pod.UID:
		return "was replaced by a pod of the same name"
	case p.DeletionTimestamp != nil:
		return "is being deleted"
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return "ended (" + string(p.Status.Phase) + ")"
	}
	return ""
}

// changedNames lists the names of the variables whose values differ between two environments
// (KEY=VALUE lines), added and removed ones included, in order: values may be secrets, so only
// names are told.
func changedNames(before, after []string) []string {
	values := func(env []string) map[string]string {
		m := make(map[string]string, len(env))
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	b, a := values(before), values(after)
	var names []string
	for k, v := range a {
		if old, ok := b[k]; !ok || old != v {
			names = append(names, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}
