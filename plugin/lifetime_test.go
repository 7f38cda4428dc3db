package plugin

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// lockedBuffer is a bytes.Buffer for one writer goroutine and a reading test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// When the sidecar ends the session at its maximum lifetime, the user reads one line that says
// so; any other end of the link says nothing here.
func TestSessionReportsMaxLifetime(t *testing.T) {
	ec := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "remocal-x", Args: []string{"--max-lifetime=12h0m0s"}}}
	for _, tt := range []struct {
		name string
		code uint64
		want string
	}{
		{"max lifetime", wire.CloseMaxLifetime, "remocal: warning: sidecar remocal-x reached its maximum lifetime (12h0m0s) and ended the session; run the command again for a new sidecar (--max-lifetime sets it)\n"},
		{"other end", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conns := make(chan *quic.Conn, 1)
			s := fakeSidecar{features: clientFeatures(false), accepted: func(c *quic.Conn) { conns <- c }}.session(t)
			var out lockedBuffer
			s.reportMaxLifetime(newProgress(&out), ec)
			(<-conns).CloseWithError(quic.ApplicationErrorCode(tt.code), "closing")
			<-s.conn.Context().Done()
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
	if endedAtMaxLifetime(errors.New("max lifetime")) || endedAtMaxLifetime(&quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(wire.CloseMaxLifetime)}) {
		t.Error("a local close or another error taken for the sidecar's max lifetime")
	}
}
