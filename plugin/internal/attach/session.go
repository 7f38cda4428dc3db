package attach

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
	"github.com/remocal/kubectl-remocal/plugin/internal/within"
)

// The attacher's link to a sidecar: connect is the one place it dials, and ready hands the
// session its target.

// ready makes t the session's target, on the sidecar ec's side too, and has the session say so
// on p when ec ends it at its maximum lifetime. It closes the session when the sidecar cannot
// serve t.
func (s *Session) ready(ctx context.Context, p *progress.Printer, t *Target, ec corev1.EphemeralContainer) (*Session, error) {
	s.target = t
	if err := s.NameTarget(ctx, ContainerID(t.Pod, t.Container)); err != nil {
		s.Close()
		return nil, err
	}
	s.reportMaxLifetime(p, ec)
	return s, nil
}

// reuseDialTimeout bounds the connection to a sidecar that the pod's status says runs.
const reuseDialTimeout = 5 * time.Second

// connectQuickly is connect for a sidecar that the pod's status says runs: a live one answers
// within milliseconds, but the status may still say running of a sidecar that just died, and
// waiting on it would cost the whole dial timeout. Only the dial is bounded: the session, whose
// port-forward lives on the context, is not. A dial still running at the bound is left to end
// by itself in the background (a port-forward stream to a dead port ends only with its own
// timeout); what it connects then is closed.
func (a *Attacher) connectQuickly(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, id transport.Identity) (*Session, string, error) {
	port, err := SidecarPort(ec)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	// The bound is the wait's alone: the session it yields lives on ctx.
	wait, stop := context.WithTimeout(context.WithoutCancel(ctx), reuseDialTimeout)
	defer stop()
	type result struct {
		sess *Session
		how  string
	}
	r, err := within.Call(wait, func() (result, error) {
		sess, how, err := a.connect(ctx, pod, ec.Name, port, id)
		return result{sess, how}, err
	}, func(r result) { r.sess.Close() })
	if err != nil {
		cancel()
		if errors.Is(err, within.ErrNoAnswer) {
			return nil, "", fmt.Errorf("no answer within %s", reuseDialTimeout)
		}
		return nil, "", err
	}
	r.sess.closers = append(r.sess.closers, closerFunc(cancel))
	return r.sess, r.how, nil
}

// Connect connects to the running sidecar ec of pod as a session does, for a caller that asks it
// one question (ls): the dial is bounded as for a sidecar to reuse.
func (a *Attacher) Connect(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, id transport.Identity) (*Session, error) {
	sess, _, err := a.connectQuickly(ctx, pod, ec, id)
	return sess, err
}

// closerFunc is a cancel function as an io.Closer.
type closerFunc func()

func (f closerFunc) Close() error {
	f()
	return nil
}

// connect opens the session with the sidecar of pod named name, which serves port.
func (a *Attacher) connect(ctx context.Context, pod *corev1.Pod, name string, port int, id transport.Identity) (*Session, string, error) {
	serverPin, err := readSidecarFingerprint(ctx, a.Client, pod, name)
	if err != nil {
		return nil, "", err
	}
	return dialSession(ctx, linkParams{
		restConfig: a.RESTConfig,
		pod:        pod,
		port:       port,
		mode:       a.Transport,
		tls:        transport.ClientTLS(id, serverPin),
		breakEvery: a.BreakLinkEvery,
		family:     a.DirectFamily,
		inspect:    a.Use.Inspect,
		label:      a.Label,
	})
}
