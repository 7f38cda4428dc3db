package attach

import (
	"context"
	"sync"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// Live is a command's session that outlives a restart of its target container (a crash, an
// OOM kill, a failed liveness probe) and, for a workload target, its pod (a rollout, a delete,
// an eviction; podgone.go): its methods go to the sidecar that serves the target now.
//
// The sidecar shares the target container's PID namespace (targetContainerName), whose first
// process is the container's main one; when that process dies the kernel ends every process of
// the namespace, the sidecar with it, and the restarted container gets a namespace of its own
// that no running process can enter. So neither the sidecar nor a new Target message can follow
// the container: the plugin watches the pod's status for the container's new instance, adds a
// new sidecar for it, and carries on through that one (renew). Only where the pod shares one
// PID namespace among its containers (shareProcessNamespace) does the sidecar live on; there
// it is told the new instance's ID, as at the start.
type Live struct {
	a  *Attacher
	p  *progress.Printer
	id transport.Identity
	// onRenew is told of each renewal, with the session's context, once the new session is in
	// place.
	onRenew func(ctx context.Context, s *Session)
	// follows says that a workload target moves to its next pod when its pod goes away;
	// otherwise the session ends with the pod.
	follows bool
	// ended is closed, with err set, when the session cannot go on.
	ended chan struct{}
	err   error

	mu  sync.Mutex
	cur *Session
	// renewed is closed when cur is replaced, and replaced with it.
	renewed chan struct{}
	// endSeen is the session whose link's end follow has handled.
	endSeen *Session

	// subMu keeps a subscription and a renewal apart: the ports taken through the old session
	// are taken again through the new one, with nothing in between.
	subMu sync.Mutex
	subs  map[uint16]sidecarclient.Subscription

	stop context.CancelFunc
	done chan struct{}
}

// restartCheckPeriod is how often the pod's status is read for a restart of the target: its
// sidecar is gone from then on, so this bounds how long the program is without the pod.
const restartCheckPeriod = time.Second

// Follow makes sess, started by Start, follow its target container through restarts, and, when
// follows is set, a workload target from pod to pod, until Close, in a goroutine bound to ctx.
// onRenew, if set, is told of each new session.
func (a *Attacher) Follow(ctx context.Context, p *progress.Printer, sess *Session, follows bool, onRenew func(ctx context.Context, s *Session)) (*Live, error) {
	id, err := transport.LoadOrCreateIdentity(a.KeyPath)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	l := &Live{
		a: a, p: p, id: id, onRenew: onRenew,
		follows: follows && sess.Target().Via != "", ended: make(chan struct{}),
		cur: sess, renewed: make(chan struct{}),
		subs: map[uint16]sidecarclient.Subscription{},
		stop: stop, done: make(chan struct{}),
	}
	go func() {
		defer close(l.done)
		l.follow(ctx)
	}()
	return l, nil
}

// now is the session in use, and a channel closed when it is replaced.
func (l *Live) now() (*Session, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.renewed
}

// Session is the session in use.
func (l *Live) Session() *Session {
	s, _ := l.now()
	return s
}

// Target is the pod and container served, as the pod's status was at the last renewal.
func (l *Live) Target() *Target {
	return l.Session().Target()
}

// replace makes next the session in use; the old one is the caller's to close.
func (l *Live) replace(next *Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = next
	close(l.renewed)
	l.renewed = make(chan struct{})
}

// Ended is closed when the session cannot go on: its pod went away and was not followed, or
// no next pod could be had.
func (l *Live) Ended() <-chan struct{} { return l.ended }

// Err says why the session ended, once Ended is closed.
func (l *Live) Err() error {
	<-l.ended
	return l.err
}

// end ends the session with err; the follow loop returns after it.
func (l *Live) end(err error) {
	l.err = err
	close(l.ended)
}

// Close stops following and ends the session in use.
func (l *Live) Close() error {
	l.stop()
	<-l.done
	return l.Session().Close()
}
