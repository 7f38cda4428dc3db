package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/within"
)

// ls's query: your running sidecars asked for their sessions and the pod ports they hold.

// lsAskTimeout bounds the whole question to one sidecar: connecting and its answer.
const lsAskTimeout = 5 * time.Second

// lsParallel bounds how many sidecars are asked at once.
const lsParallel = 8

// askSubscriptions asks each of your running sidecars for its sessions and the ports they
// hold (an older sidecar, for the ports alone), in parallel, each within lsAskTimeout, and
// fills in the rows; now dates the sessions.
func (o *LsOptions) askSubscriptions(ctx context.Context, rows []sidecarRow, pods []corev1.Pod, id transport.Identity, now time.Time) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, lsParallel)
	for i := range rows {
		r := &rows[i]
		if r.SubscriptionsUnknown != "" {
			continue
		}
		pod, ec, ok := findSidecar(pods, r.Namespace, r.Pod, r.Sidecar)
		if !ok {
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			a, err := o.ask(ctx, pod, ec, id)
			if err != nil {
				r.SubscriptionsUnknown = oneLine(err.Error())
				return
			}
			r.asked = true
			if a.sessions != nil {
				r.Sessions, r.Subscriptions = sessionsOf(r.Sidecar, *a.sessions, now)
				return
			}
			r.Subscriptions = make([]lsSubscription, len(a.subs))
			for j, s := range a.subs {
				r.Subscriptions[j] = lsSubscription{Port: s.Port, Mode: s.Mode, Header: s.Header, Path: s.Path, Client: s.Client, Capture: s.Capture}
			}
		})
	}
	wg.Wait()
}

func findSidecar(pods []corev1.Pod, namespace, pod, name string) (*corev1.Pod, corev1.EphemeralContainer, bool) {
	for i := range pods {
		if pods[i].Namespace != namespace || pods[i].Name != pod {
			continue
		}
		for _, ec := range pods[i].Spec.EphemeralContainers {
			if ec.Name == name {
				return &pods[i], ec, true
			}
		}
	}
	return nil, corev1.EphemeralContainer{}, false
}

// lsAnswer is what one sidecar said: its sessions, or, from a sidecar older than them, the
// ports its sessions hold.
type lsAnswer struct {
	sessions *[]wire.SessionInfo // nil when the sidecar cannot list them
	subs     []wire.SubscriptionInfo
}

// ask connects to one sidecar as a session does and asks for its sessions, or its
// subscriptions when it is older than them. The whole of it is bounded: a sidecar that just
// died, or a link that stalls, costs lsAskTimeout at most, and what is still running then is
// left to end by itself.
func (o *LsOptions) ask(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, id transport.Identity) (lsAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, lsAskTimeout)
	defer cancel()
	a, err := within.Call(ctx, func() (lsAnswer, error) {
		sess, err := o.attacher.Connect(ctx, pod, ec, id)
		if err != nil {
			return lsAnswer{}, err
		}
		defer sess.Close()
		var old *sidecarclient.FeatureError
		sessions, err := sess.Sessions(ctx)
		if !errors.As(err, &old) {
			return lsAnswer{sessions: &sessions}, err
		}
		subs, err := sess.Subscriptions(ctx)
		if errors.As(err, &old) {
			return lsAnswer{}, errOldSidecar
		}
		return lsAnswer{subs: subs}, err
	}, nil)
	if errors.Is(err, within.ErrNoAnswer) {
		return lsAnswer{}, fmt.Errorf("no answer within %s", lsAskTimeout)
	}
	return a, err
}

// errOldSidecar: the sidecar predates the Subscriptions request.
var errOldSidecar = errors.New("a sidecar of an older remocal version cannot list them")

// spreadSessions moves the sessions that your sidecars listed for the other sidecars of their
// pods (other users', which you cannot ask) to those sidecars' rows, once each: two of your
// sidecars in one pod both list them.
func spreadSessions(rows []sidecarRow) {
	type key struct{ namespace, pod, sidecar string }
	index := map[key]int{}
	for i, r := range rows {
		index[key{r.Namespace, r.Pod, r.Sidecar}] = i
	}
	type seen struct {
		key
		client string
	}
	moved := map[seen]bool{}
	for i := range rows {
		r := &rows[i]
		kept := r.Sessions[:0:0]
		for _, s := range r.Sessions {
			j, ok := index[key{r.Namespace, r.Pod, s.Sidecar}]
			if s.Sidecar == r.Sidecar || !ok || rows[j].asked {
				kept = append(kept, s)
				continue
			}
			if id := (seen{key{r.Namespace, r.Pod, s.Sidecar}, s.Client}); !moved[id] {
				moved[id] = true
				other := &rows[j]
				other.Sessions = append(other.Sessions, s)
				other.Subscriptions = append(other.Subscriptions, s.Subscriptions...)
				other.SubscriptionsUnknown = ""
			}
		}
		if r.Sessions != nil {
			r.Sessions = kept
		}
	}
}
