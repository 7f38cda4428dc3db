package sidecarclient

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestSessionSubscribeNeedsTheFeature(t *testing.T) {
	s := fakeSidecar{features: []string{wire.FeatureSteal}}.session(t)
	err := s.Subscribe(t.Context(), 8080, Subscription{Mode: wire.ModeMirror})
	var missing *FeatureError
	if !errors.As(err, &missing) || missing.Feature != wire.FeatureMirror || err.Error() != "the sidecar cannot mirror: a sidecar of an older remocal version" {
		t.Fatalf("Subscribe to mirror from a sidecar without it = %v, want a FeatureError", err)
	}
}

func TestSubscriptionFeature(t *testing.T) {
	for _, tt := range []struct {
		sub  Subscription
		want string
	}{
		{Subscription{Mode: wire.ModeSteal}, wire.FeatureSteal},
		{Subscription{Mode: wire.ModeMirror}, wire.FeatureMirror},
		{Subscription{Mode: wire.ModeSteal, Header: "X-Dev: a"}, wire.FeatureHTTPFilter},
		{Subscription{Mode: wire.ModeSteal, Path: "^/x"}, wire.FeatureHTTPFilter},
	} {
		if got := tt.sub.feature(); got != tt.want {
			t.Errorf("%+v needs %s, want %s", tt.sub, got, tt.want)
		}
	}
}

// TestSessionAcceptIncoming: a stream the sidecar opens is a connection with its port and
// client; one that does not say so is passed over.
func TestSessionAcceptIncoming(t *testing.T) {
	conns := make(chan *quic.Conn, 1)
	s := fakeSidecar{features: features(false), accepted: func(c *quic.Conn) { conns <- c }}.session(t)
	conn := <-conns
	for _, first := range []wire.Message{wire.Heartbeat{Seq: 1}, wire.Incoming{Port: 8080, Remote: "198.18.0.7:5555"}} {
		stream, err := conn.OpenStreamSync(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.WriteMessage(stream, first); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = stream.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	in, err := s.AcceptIncoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Port != 8080 || in.Remote != "198.18.0.7:5555" {
		t.Errorf("AcceptIncoming = port %d from %s", in.Port, in.Remote)
	}
	if data, err := io.ReadAll(in); err != nil || string(data) != "GET / HTTP/1.1\r\n\r\n" {
		t.Errorf("the connection carried %q, %v", data, err)
	}
	// Nothing more comes: the wait ends with its context.
	short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if in, err := s.AcceptIncoming(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AcceptIncoming with nothing sent = %+v, %v", in, err)
	}
}
