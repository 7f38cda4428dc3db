package sidecarclient

import (
	"errors"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// ErrMaxLifetime is the end of a session that the sidecar closed when it reached its maximum
// lifetime (its --max-lifetime): a new sidecar is needed, not a new session with this one.
var ErrMaxLifetime = errors.New("the sidecar reached its maximum lifetime")

// FeatureError is a request the sidecar cannot serve because it did not offer the feature in
// its hello: a sidecar of an older version than this client.
type FeatureError struct {
	Feature string // the wire feature, e.g. wire.FeatureFS
	Action  string // what it takes, as in "the sidecar cannot Action"
}

func (e *FeatureError) Error() string {
	return "the sidecar cannot " + e.Action + ": a sidecar of an older remocal version"
}

// RefusedError is a request the sidecar answered with a wire.Error: it understood the
// request, and says why it cannot serve it.
type RefusedError struct {
	What   string // what the sidecar did, as in "the sidecar What: reason"
	Reason wire.Error
}

func (e *RefusedError) Error() string { return "the sidecar " + e.What + ": " + e.Reason.Reason }

// Unwrap gives the sidecar's wire.Error, whose code errors.Is matches.
func (e *RefusedError) Unwrap() error { return e.Reason }
