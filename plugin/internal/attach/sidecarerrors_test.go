package attach

import (
	"errors"
	"fmt"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// The sidecar client's refusals read as they did when the plugin held the client: one line
// that says what to do.
func TestSidecarErrorsForTheUser(t *testing.T) {
	refused := &sidecarclient.RefusedError{What: "refused the session", Reason: wire.Error{Code: wire.ErrCodeVersion, Reason: "sidecar speaks protocol 2, client 1"}}
	missing := &sidecarclient.FeatureError{Feature: wire.FeatureReadFile, Action: "read files"}
	other := errors.New("read hello reply: timeout")
	for _, tt := range []struct {
		name    string
		explain func(error) error
		err     error
		want    string
		user    bool
	}{
		{"refused hello", explainRefusedSession, refused, "the sidecar refused the session: sidecar speaks protocol 2, client 1 (a sidecar of another remocal version; pass --sidecar-image matching this plugin)", true},
		{"failed hello", explainRefusedSession, other, other.Error(), false},
		{"missing feature", ExplainMissingFeature, missing, "the sidecar cannot read files: a sidecar of an older remocal version (pass --sidecar-image matching this plugin)", true},
		{"missing feature, wrapped", ExplainMissingFeature, fmt.Errorf("read the pod's /etc/resolv.conf: %w", missing), "read the pod's /etc/resolv.conf: the sidecar cannot read files: a sidecar of an older remocal version (pass --sidecar-image matching this plugin)", true},
		{"explained once", ExplainMissingFeature, ExplainMissingFeature(missing), "the sidecar cannot read files: a sidecar of an older remocal version (pass --sidecar-image matching this plugin)", true},
		{"other failure", ExplainMissingFeature, other, other.Error(), false},
		{"no failure", ExplainMissingFeature, nil, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.explain(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("explained nil as %v", got)
				}
				return
			}
			if got.Error() != tt.want || usererr.Is(got) != tt.user || !errors.Is(got, tt.err) {
				t.Errorf("got %q (user error %v), want %q (%v) wrapping the cause", got, usererr.Is(got), tt.want, tt.user)
			}
		})
	}
}
