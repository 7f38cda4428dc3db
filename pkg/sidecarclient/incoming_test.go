package sidecarclient

import (
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
	// A sidecar that filters by header and path only cannot take a tree.
	s = fakeSidecar{features: []string{wire.FeatureSteal, wire.FeatureHTTPFilter}}.session(t)
	tree := Subscription{Mode: wire.ModeSteal, Filter: &wire.HTTPFilter{Op: wire.FilterMethod, Arg: "GET"}}
	err = s.Subscribe(t.Context(), 8080, tree)
	want := "the sidecar cannot filter HTTP requests by method, query parameter, all-of or any-of: a sidecar of an older remocal version"
	if !errors.As(err, &missing) || missing.Feature != wire.FeatureHTTPFilterTree || err.Error() != want {
		t.Fatalf("Subscribe with a filter tree to a sidecar without it = %v, want a FeatureError", err)
	}
	if err := s.CanSubscribe(Subscription{Mode: wire.ModeSteal, Header: "X-Dev: a"}); err != nil {
		t.Fatalf("CanSubscribe with a header filter: %v", err)
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
		{Subscription{Mode: wire.ModeSteal, Path: "^/x", Filter: &wire.HTTPFilter{Op: wire.FilterQuery, Arg: "a="}}, wire.FeatureHTTPFilterTree},
	} {
		if got := tt.sub.feature(); got != tt.want {
			t.Errorf("%+v needs %s, want %s", tt.sub, got, tt.want)
		}
	}
}

// serveIncoming runs s.ServeIncoming until the test ends, and returns the connections it hands
// over.
func serveIncoming(t *testing.T, s *Session) <-chan *Incoming {
	t.Helper()
	ins := make(chan *Incoming, 16)
	go func() { _ = s.ServeIncoming(t.Context(), func(in *Incoming) { ins <- in }) }()
	return ins
}

// nextIncoming waits up to d for the next connection from ins; nil when none comes.
func nextIncoming(ins <-chan *Incoming, d time.Duration) *Incoming {
	select {
	case in := <-ins:
		return in
	case <-time.After(d):
		return nil
	}
}

// TestSessionServeIncoming: a stream the sidecar opens is a connection with its port and
// client; one that does not say so is passed over, and one whose header has not come yet holds
// up no other.
func TestSessionServeIncoming(t *testing.T) {
	conns := make(chan *quic.Conn, 1)
	s := fakeSidecar{features: features(false), accepted: func(c *quic.Conn) { conns <- c }}.session(t)
	conn := <-conns
	stalled, err := conn.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A stream's first byte is what the peer first hears of it: one byte of a header, then
	// nothing.
	if _, err := stalled.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
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
	ins := serveIncoming(t, s)
	in := nextIncoming(ins, 5*time.Second)
	if in == nil {
		t.Fatal("no connection handed over")
	}
	if in.Port != 8080 || in.Remote != "198.18.0.7:5555" {
		t.Errorf("ServeIncoming handed over port %d from %s", in.Port, in.Remote)
	}
	if data, err := io.ReadAll(in); err != nil || string(data) != "GET / HTTP/1.1\r\n\r\n" {
		t.Errorf("the connection carried %q, %v", data, err)
	}
	// Nothing more comes.
	if in := nextIncoming(ins, 100*time.Millisecond); in != nil {
		t.Errorf("ServeIncoming handed over port %d from %s, with nothing sent", in.Port, in.Remote)
	}
}
