package sidecarclient

import (
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// TestSessionAbandonedAnswerFailsLaterRequests: after a reply it cannot place, a request gives
// up the control stream, and the rest of its answer is never taken for the next request's.
func TestSessionAbandonedAnswerFailsLaterRequests(t *testing.T) {
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, req wire.Message) {
			if req.(wire.FileRequest).Path == "/a" {
				_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("first part of a, "), More: true})
				_ = wire.WriteMessage(w, wire.Heartbeat{Seq: 1}) // out of place
				_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("rest of a")})
				return
			}
			_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("b")})
		},
	}.session(t)
	if _, err := s.ReadFile(t.Context(), "/a"); err == nil {
		t.Fatal("ReadFile took a heartbeat for part of a file")
	}
	if data, err := s.ReadFile(t.Context(), "/b"); err == nil {
		t.Fatalf("the request after got %q, an answer that may not be its own", data)
	}
}

// TestSessionHello: the client offers its features, inspect only when it only looks, and takes
// the sidecar's for what it may ask.
func TestSessionHello(t *testing.T) {
	for _, inspect := range []bool{false, true} {
		hellos := make(chan wire.Hello, 1)
		f := fakeSidecar{hello: func(h wire.Hello) wire.Message {
			hellos <- h
			return wire.HelloReply{Version: wire.Version, Features: []string{wire.FeatureEnv}}
		}}
		s, err := f.connect(t, Options{Inspect: inspect})
		if err != nil {
			t.Fatal(err)
		}
		h := <-hellos
		if h.Version != wire.Version || slices.Contains(h.Features, wire.FeatureInspect) != inspect || !slices.Contains(h.Features, wire.FeatureFS) {
			t.Errorf("inspect %v: the sidecar got %+v", inspect, h)
		}
		if !s.has(wire.FeatureEnv) || s.has(wire.FeatureFS) {
			t.Errorf("the session has %q, want the sidecar's", s.hello.Features)
		}
	}
}

// TestSessionRefused: a sidecar that refuses the hello (another protocol version) leaves a
// refusal with its reason, and the connection closed.
func TestSessionRefused(t *testing.T) {
	conns := make(chan *quic.Conn, 1)
	f := fakeSidecar{
		hello: func(wire.Hello) wire.Message {
			return wire.Error{Code: wire.ErrCodeVersion, Reason: "sidecar speaks protocol 9, client 1"}
		},
		accepted: func(c *quic.Conn) { conns <- c },
	}
	_, err := f.connect(t, Options{})
	var refused *RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, wire.Error{Code: wire.ErrCodeVersion}) || err.Error() != "the sidecar refused the session: sidecar speaks protocol 9, client 1" {
		t.Fatalf("New = %v, want the refusal", err)
	}
	select {
	case <-(<-conns).Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection of a refused session stays open")
	}
}

// TestSessionEnd: Done and Err tell the end of the link, and which end was the sidecar's
// maximum lifetime.
func TestSessionEnd(t *testing.T) {
	for _, tt := range []struct {
		name  string
		code  uint64
		local bool
		max   bool
	}{
		{name: "max lifetime", code: wire.CloseMaxLifetime, max: true},
		{name: "sidecar stopping", code: 0},
		{name: "closed here", local: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conns := make(chan *quic.Conn, 1)
			s, err := fakeSidecar{features: features(false), accepted: func(c *quic.Conn) { conns <- c }}.connect(t, Options{})
			if err != nil {
				t.Fatal(err)
			}
			conn := <-conns
			if s.Err() != nil {
				t.Fatalf("Err = %v while the link lasts", s.Err())
			}
			if tt.local {
				s.Close()
			} else {
				_ = conn.CloseWithError(quic.ApplicationErrorCode(tt.code), "closing")
			}
			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done stays open after the link ended")
			}
			if got := errors.Is(s.Err(), ErrMaxLifetime); got != tt.max || s.Err() == nil {
				t.Errorf("Err = %v; at max lifetime: %v, want %v", s.Err(), got, tt.max)
			}
		})
	}
}

// TestSessionLabel: the label follows the hello, unanswered, only to a sidecar that offers
// sessions; an older sidecar gets none, and its session works as before.
func TestSessionLabel(t *testing.T) {
	for _, tt := range []struct {
		name      string
		features  []string
		label     string
		wantLabel bool
	}{
		{name: "sidecar with sessions", features: []string{wire.FeatureSessions, wire.FeatureReadFile}, label: "alice@laptop", wantLabel: true},
		{name: "older sidecar", features: []string{wire.FeatureReadFile}, label: "alice@laptop"},
		{name: "no label", features: []string{wire.FeatureSessions, wire.FeatureReadFile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requests := make(chan wire.Message, 2)
			s, err := fakeSidecar{
				features: tt.features,
				answer: func(w io.Writer, req wire.Message) {
					requests <- req
					if _, ok := req.(wire.FileRequest); ok {
						_ = wire.WriteMessage(w, wire.FileReply{Data: []byte("b")})
					}
				},
			}.connect(t, Options{Label: tt.label})
			if err != nil {
				t.Fatal(err)
			}
			if data, err := s.ReadFile(t.Context(), "/b"); err != nil || string(data) != "b" {
				t.Fatalf("ReadFile after the hello: %q, %v", data, err)
			}
			first := <-requests
			if got, ok := first.(wire.SessionLabel); ok != tt.wantLabel || ok && got.Label != tt.label {
				t.Fatalf("the sidecar's first request after the hello: %#v", first)
			}
			if tt.wantLabel {
				if _, ok := (<-requests).(wire.FileRequest); !ok {
					t.Fatal("the file request did not follow the label")
				}
			}
		})
	}
}

// TestSessionSessionsAndRedirect: what the sidecar says of itself in the hello.
func TestSessionSessionsAndRedirect(t *testing.T) {
	old := fakeSidecar{features: []string{wire.FeatureSteal}}.session(t)
	var missing *FeatureError
	if _, err := old.Sessions(t.Context()); !errors.As(err, &missing) {
		t.Errorf("Sessions of an older sidecar: %v, want a FeatureError", err)
	}
	if !old.CanRedirect() {
		t.Error("an older sidecar, which never says it cannot redirect, is taken to be unable to")
	}
	unable := fakeSidecar{features: []string{wire.FeatureSteal, wire.FeatureNoRedirect}}.session(t)
	if unable.CanRedirect() {
		t.Error("a sidecar that says it cannot redirect is taken to be able to")
	}
}
