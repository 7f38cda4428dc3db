package plugin

import (
	"context"
	"errors"
	"time"

	"github.com/quic-go/quic-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/wire"
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

// endedAtMaxLifetime tells whether the sidecar closed the connection because it reached its
// maximum lifetime.
func endedAtMaxLifetime(cause error) bool {
	var appErr *quic.ApplicationError
	return errors.As(cause, &appErr) && appErr.Remote && uint64(appErr.ErrorCode) == wire.CloseMaxLifetime
}

// reportMaxLifetime has the session say, in one line on p, when the sidecar ec ends it at its
// maximum lifetime: the program may still run, and its connections through the pod fail from
// then on.
func (s *session) reportMaxLifetime(p *progress, ec corev1.EphemeralContainer) {
	stop := context.AfterFunc(s.conn.Context(), func() {
		if endedAtMaxLifetime(context.Cause(s.conn.Context())) {
			p.warn("sidecar %s reached its maximum lifetime (%s) and ended the session; run the command again for a new sidecar (--max-lifetime sets it)", ec.Name, sidecarFlags(ec).MaxLifetime)
		}
	})
	s.closers = append(s.closers, closerFunc(func() { stop() }))
}
