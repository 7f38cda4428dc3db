package sidecar

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A client that stays connected does not keep a sidecar past its maximum lifetime: the sidecar
// closes the connection with wire.CloseMaxLifetime, so the plugin can say why, and Run ends.
func TestRunEndsAtMaxLifetime(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	const lifetime = 1500 * time.Millisecond
	begin := time.Now()
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00"), func(c *Config) {
		c.TTL = time.Hour
		c.MaxLifetime = lifetime
	})
	conn := dialSidecar(t, client, port, pin)
	// Keep the connection busy with heartbeats, as a live client does.
	stream, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(stream)
	if err := wire.WriteMessage(stream, wire.Hello{Version: wire.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Context().Done():
	case <-time.After(lifetime + 10*time.Second):
		t.Fatal("the connection outlived the sidecar's max lifetime")
	}
	if took := time.Since(begin); took < lifetime {
		t.Errorf("closed after %s, before the max lifetime", took)
	}
	var appErr *quic.ApplicationError
	if cause := context.Cause(conn.Context()); !errors.As(cause, &appErr) || !appErr.Remote || uint64(appErr.ErrorCode) != wire.CloseMaxLifetime {
		t.Errorf("close cause %v, want the sidecar's application error %d", cause, wire.CloseMaxLifetime)
	}
}
