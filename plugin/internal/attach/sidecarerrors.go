package attach

import (
	"errors"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// The sidecar client's refusals, worded for the user of this command line: what to do about a
// sidecar of another version than the plugin.

// explainRefusedSession words the hello's refusal, which only a sidecar of another protocol
// version sends.
func explainRefusedSession(err error) error {
	var refused *sidecarclient.RefusedError
	if usererr.Is(err) || !errors.As(err, &refused) {
		return err
	}
	return usererr.Wrap(err, err.Error()+" (a sidecar of another remocal version; pass --sidecar-image matching this plugin)")
}

// ExplainMissingFeature words a request that an older sidecar cannot serve. The commands that
// hold a session pass their error through it, and so does what warns of a failure on the way.
func ExplainMissingFeature(err error) error {
	var missing *sidecarclient.FeatureError
	if usererr.Is(err) || !errors.As(err, &missing) {
		return err
	}
	return usererr.Wrap(err, err.Error()+" (pass --sidecar-image matching this plugin)")
}
