package sidecar

import (
	"encoding/binary"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// TestListSessions: each session that does more than look, oldest first, with its label,
// its start and the ports it holds; the asker's own marked.
func TestListSessions(t *testing.T) {
	alice, _ := quicPair(t)
	bob, _ := quicPair(t)
	ls, _ := quicPair(t)
	srv := newServer(Config{Flags: sidecarapi.Flags{Name: "remocal-x7k2p"}}, slog.New(slog.DiscardHandler))
	start := time.UnixMilli(1_700_000_000_000)
	srv.sessions.open(bob, start.Add(time.Minute), false)
	srv.sessions.open(alice, start, false)
	srv.sessions.open(ls, start.Add(2*time.Minute), true)
	srv.sessions.label(alice, "alice@laptop")
	srv.sessions.label(ls, "never listed")
	srv.in.subs[8080] = []subscription{
		{client: bob, mode: wire.ModeSteal, header: "X-Dev: bob"},
		{client: alice, mode: wire.ModeSteal, header: "X-Dev: alice", path: "^/api/"},
	}
	srv.in.subs[80] = []subscription{{client: alice, mode: wire.ModeMirror}}

	want := wire.SessionsReply{Sessions: []wire.SessionInfo{
		{Sidecar: "remocal-x7k2p", Label: "alice@laptop", Since: start, Client: alice.RemoteAddr().String(), Mine: true, Ports: []wire.SessionPort{
			{Port: 80, Mode: wire.ModeMirror},
			{Port: 8080, Mode: wire.ModeSteal, Header: "X-Dev: alice", Path: "^/api/"},
		}},
		// An older plugin sends no label.
		{Sidecar: "remocal-x7k2p", Since: start.Add(time.Minute), Client: bob.RemoteAddr().String(), Ports: []wire.SessionPort{
			{Port: 8080, Mode: wire.ModeSteal, Header: "X-Dev: bob"},
		}},
	}}
	if got := srv.listSessions(t.Context(), alice); !reflect.DeepEqual(got, want) {
		t.Fatalf("listSessions =\n%#v\nwant\n%#v", got, want)
	}

	// A second control stream is the same session, and a connection that ends is no longer one.
	srv.sessions.open(alice, start.Add(time.Hour), false)
	srv.sessions.close(bob)
	got := srv.listSessions(t.Context(), ls).(wire.SessionsReply)
	if len(got.Sessions) != 1 || got.Sessions[0].Label != "alice@laptop" || !got.Sessions[0].Since.Equal(start) || got.Sessions[0].Mine {
		t.Fatalf("after bob left: %#v", got)
	}
}

// TestServerListsLabelledSessions: the label that follows the hello gets no answer, and the
// listing shows it; a session that only looks is not listed.
func TestServerListsLabelledSessions(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00"))
	before := time.Now().Add(-time.Second)
	session, _ := openControl(t, dialSidecar(t, client, port, pin), wire.FeatureSessions)
	if err := wire.WriteMessage(session, wire.SessionLabel{Label: "alice@laptop"}); err != nil {
		t.Fatal(err)
	}
	ls, r := openControl(t, dialSidecar(t, client, port, pin), wire.FeatureSessions, wire.FeatureInspect)
	var reply wire.SessionsReply
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := wire.WriteMessage(ls, wire.Sessions{}); err != nil {
			t.Fatal(err)
		}
		msg, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		if reply, ok = msg.(wire.SessionsReply); !ok {
			t.Fatalf("reply = %#v, want a SessionsReply", msg)
		}
		if len(reply.Sessions) == 1 && reply.Sessions[0].Label != "" || time.Now().After(deadline) {
			break
		}
	}
	if len(reply.Sessions) != 1 {
		t.Fatalf("sessions = %#v, want the labelled one alone", reply.Sessions)
	}
	s := reply.Sessions[0]
	if s.Label != "alice@laptop" || s.Mine || s.Ports != nil || s.Since.Before(before) || s.Since.After(time.Now()) {
		t.Fatalf("session = %#v", s)
	}
}

// TestServerRefusesAnUnprintableLabel: a label that would write escapes on other users'
// terminals ends its control stream as any malformed message does.
func TestServerRefusesAnUnprintableLabel(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00"))
	control, r := openControl(t, dialSidecar(t, client, port, pin), wire.FeatureSessions)
	label := "\x1b]0;pwned\x07"
	frame := []byte{byte(wire.TypeSessionLabel)}
	frame = binary.BigEndian.AppendUint32(frame, uint32(1+len(label)))
	frame = append(append(frame, byte(len(label))), label...)
	if _, err := control.Write(frame); err != nil {
		t.Fatal(err)
	}
	msg, err := r.ReadMessage()
	if e, ok := msg.(wire.Error); err != nil || !ok || e.Code != wire.ErrCodeProtocol {
		t.Fatalf("after an unprintable label: %#v, %v; want a protocol error", msg, err)
	}
}

// TestOfferedFeatures: no-redirect is offered only by a sidecar that cannot redirect.
func TestOfferedFeatures(t *testing.T) {
	if f := offeredFeatures(true); slices.Contains(f, wire.FeatureNoRedirect) || !slices.Contains(f, wire.FeatureSteal) {
		t.Errorf("with NET_ADMIN: %q", f)
	}
	if f := offeredFeatures(false); !slices.Contains(f, wire.FeatureNoRedirect) || !slices.Contains(f, wire.FeatureSessions) {
		t.Errorf("without NET_ADMIN: %q", f)
	}
}
