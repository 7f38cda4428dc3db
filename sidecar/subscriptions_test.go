package sidecar

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
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

// TestRequestFilter: the filter of a subscription is each part that is set, and a part that
// does not parse is refused as EINVAL.
func TestRequestFilter(t *testing.T) {
	get := &wire.HTTPFilter{Op: wire.FilterMethod, Arg: "GET"}
	for _, tt := range []struct {
		name string
		req  wire.Subscribe
		want string // an error containing it, or "" for none
		nil  bool
	}{
		{name: "a whole port", req: wire.Subscribe{Mode: wire.ModeSteal}, nil: true},
		{name: "a header", req: wire.Subscribe{Mode: wire.ModeSteal, Header: "X-Dev: a"}},
		{name: "a tree", req: wire.Subscribe{Mode: wire.ModeSteal, Filter: get}},
		{name: "a header and a tree", req: wire.Subscribe{Mode: wire.ModeSteal, Header: "X-Dev: a", Filter: get}},
		{name: "a tree to mirror", req: wire.Subscribe{Mode: wire.ModeMirror, Filter: get}, want: "not what to mirror"},
		{name: "a bad tree", req: wire.Subscribe{Mode: wire.ModeSteal, Filter: &wire.HTTPFilter{Op: wire.FilterQuery, Arg: "x"}}, want: `query filter "x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := requestFilter(tt.req)
			switch {
			case tt.want != "":
				if err == nil || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want EINVAL with %q", err, tt.want)
				}
			case err != nil:
				t.Fatal(err)
			case (f == nil) != tt.nil:
				t.Fatalf("filter %+v, want nil: %v", f, tt.nil)
			case tt.req.Filter != nil && len(f.AllOf) != 1:
				t.Fatalf("filter %+v, want the tree in AllOf", f)
			}
		})
	}
}

// TestSharableByTree: two sessions share a port with different trees, not with the same one.
func TestSharableByTree(t *testing.T) {
	alice, _ := quicPair(t)
	bob, _ := quicPair(t)
	tree := func(client *quic.Conn, method string) subscription {
		f := &wire.HTTPFilter{Op: wire.FilterMethod, Arg: method}
		filter, err := requestFilter(wire.Subscribe{Mode: wire.ModeSteal, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return subscription{client: client, mode: wire.ModeSteal, filter: filter, tree: httpfilter.Format(*f)}
	}
	subs := []subscription{tree(alice, "GET")}
	if err := sharable(80, subs, tree(bob, "POST")); err != nil {
		t.Errorf("different trees: %v", err)
	}
	if err := sharable(80, subs, tree(bob, "GET")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("the same tree: %v, want EADDRINUSE", err)
	}
	if err := sharable(80, subs, tree(alice, "POST")); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("another tree of the same session: %v, want EADDRINUSE", err)
	}
}
