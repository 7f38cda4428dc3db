package attach

import (
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// reuseMinLifetime is the least maximum lifetime a sidecar must have left to be reused: a
// session on one with less would be cut short within the hour.
const reuseMinLifetime = time.Hour

// lifetimeLeft is how long a sidecar with flags, started at start, runs before its
// --max-lifetime ends it; ok is false for a sidecar of a version without one, which has no
// maximum.
func lifetimeLeft(flags sidecarapi.Flags, start, now time.Time) (left time.Duration, ok bool) {
	if flags.MaxLifetime == 0 || start.IsZero() {
		return 0, false
	}
	return start.Add(flags.MaxLifetime).Sub(now), true
}

// reportMaxLifetime has the session say, in one line on p, when the sidecar ec ends it at its
// maximum lifetime: the program may still run, and its connections through the pod fail from
// then on.
func (s *Session) reportMaxLifetime(p *progress.Printer, ec corev1.EphemeralContainer) {
	s.closers = append(s.closers, closerFunc(warnAtMaxLifetime(s.Session, p, ec)))
}

// linkEnd is how the end of a link shows: a *sidecarclient.Session, or a test's.
type linkEnd interface {
	Done() <-chan struct{}
	Err() error
}

// warnAtMaxLifetime warns on p when link ends, if the sidecar ec ended it at its maximum
// lifetime, unless stop came first.
func warnAtMaxLifetime(link linkEnd, p *progress.Printer, ec corev1.EphemeralContainer) (stop func()) {
	quit := make(chan struct{})
	go func() {
		select {
		case <-link.Done():
			if errors.Is(link.Err(), sidecarclient.ErrMaxLifetime) {
				p.Warn("sidecar %s reached its maximum lifetime (%s) and ended the session; run the command again for a new sidecar (--max-lifetime sets it)", ec.Name, SidecarFlags(ec).MaxLifetime)
			}
		case <-quit:
		}
	}()
	return sync.OnceFunc(func() { close(quit) })
}
