package attach

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// fakeLink is a link whose end the test chooses.
type fakeLink struct {
	done chan struct{}
	err  error
}

func (l *fakeLink) Done() <-chan struct{} { return l.done }
func (l *fakeLink) Err() error            { return l.err }

// When the sidecar ends the session at its maximum lifetime, the user reads one line that says
// so; any other end of the link says nothing here.
func TestSessionReportsMaxLifetime(t *testing.T) {
	ec := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "remocal-x", Args: []string{"--max-lifetime=12h0m0s"}}}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{name: "max lifetime", err: fmt.Errorf("%w: closing", sidecarclient.ErrMaxLifetime), want: "remocal: warning: sidecar remocal-x reached its maximum lifetime (12h0m0s) and ended the session; run the command again for a new sidecar (--max-lifetime sets it)\n"},
		{name: "other end", err: errors.New("sidecar stopping")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			link := &fakeLink{done: make(chan struct{}), err: tt.err}
			var out syncbuf.Buffer
			stop := warnAtMaxLifetime(link, progress.New(&out), ec)
			defer stop()
			close(link.done)
			deadline := time.Now().Add(2 * time.Second)
			for out.String() != tt.want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("printed %q, want %q", got, tt.want)
			}
			if strings.Count(out.String(), "\n") > 1 {
				t.Error("more than one line")
			}
		})
	}
}
