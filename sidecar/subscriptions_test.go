package sidecar

import (
	"log/slog"
	"reflect"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// TestIncomingList: every subscription, by port and then in the order taken, with the asking
// connection's own marked.
func TestIncomingList(t *testing.T) {
	mine, _ := quicPair(t)
	other, _ := quicPair(t)
	in := newIncoming(slog.New(slog.DiscardHandler), "")
	if got := in.list(mine); got != nil {
		t.Fatalf("no subscription: list = %#v, want nil", got)
	}
	in.subs[8080] = []subscription{
		{client: other, mode: wire.ModeSteal, header: "X-Dev: bob"},
		{client: mine, mode: wire.ModeSteal, header: "X-Dev: alice", path: "^/api/"},
	}
	in.subs[80] = []subscription{{client: mine, mode: wire.ModeMirror}}
	want := []wire.SubscriptionInfo{
		{Port: 80, Mode: wire.ModeMirror, Client: mine.RemoteAddr().String(), Mine: true},
		{Port: 8080, Mode: wire.ModeSteal, Header: "X-Dev: bob", Client: other.RemoteAddr().String()},
		{Port: 8080, Mode: wire.ModeSteal, Header: "X-Dev: alice", Path: "^/api/", Client: mine.RemoteAddr().String(), Mine: true},
	}
	if got := in.list(mine); !reflect.DeepEqual(got, want) {
		t.Fatalf("list =\n%#v\nwant\n%#v", got, want)
	}
}

// TestServerAnswersSubscriptions: the request is served on the control stream when negotiated.
func TestServerAnswersSubscriptions(t *testing.T) {
	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, fakeProc(t, "A=1\x00"))
	conn := dialSidecar(t, client, port, pin)
	control, r := openControl(t, conn, wire.FeatureSubscriptions)
	if err := wire.WriteMessage(control, wire.Subscriptions{}); err != nil {
		t.Fatal(err)
	}
	msg, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if reply, ok := msg.(wire.SubscriptionsReply); !ok || len(reply.Subscriptions) != 0 {
		t.Fatalf("reply = %#v, want an empty SubscriptionsReply", msg)
	}
}
