package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Sessions of two sidecars of a pod share a port by filter: the first sidecar routes it, and
// sends the second's requests to it; a whole-port steal is refused, naming the session that
// holds the port; the router routes for the other sidecar after its own session left; and when
// it stops, the other sidecar redirects the port itself.
func TestPortSharedAcrossSidecars(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	first, second := sharingSidecar(t, "remocal-first"), sharingSidecar(t, "remocal-second")
	alice, alicePlugin := quicPair(t)
	bob, bobPlugin := quicPair(t)
	servePlugin(t, alicePlugin, "alice")
	servePlugin(t, bobPlugin, "bob")
	app := serveApp(t)

	mustSubscribe(t, first, alice, "alice@laptop", wire.Subscribe{Port: 8000, Mode: wire.ModeSteal, Header: "X-Dev: alice"})
	// Bob's filter is a tree, which the share carries to the router as it is.
	bobs := &wire.HTTPFilter{Op: wire.FilterAllOf, Sub: []wire.HTTPFilter{{Op: wire.FilterHeader, Arg: "X-Dev: bob"}, {Op: wire.FilterMethod, Arg: "GET"}}}
	mustSubscribe(t, second, bob, "bob@laptop", wire.Subscribe{Port: 8000, Mode: wire.ModeSteal, Filter: bobs})
	if routes := ports(second); len(routes) != 0 {
		t.Fatalf("the second sidecar redirects %v; want nothing: the first routes port 8000", routes)
	}
	third := sharingSidecar(t, "remocal-third")
	carol, _ := quicPair(t)
	err := third.subscribe(t.Context(), carol, "carol", wire.Subscribe{Port: 8000, Mode: wire.ModeSteal})
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "alice@laptop (sidecar remocal-first, since ") {
		t.Fatalf("a whole-port steal of the shared port: %v; want EADDRINUSE naming alice@laptop on remocal-first", err)
	}

	for _, dev := range []string{"alice", "bob", "", "bob"} {
		if got := request(t, first, app, dev); got != answerer(dev) {
			t.Fatalf("request for %q answered by %q; want %q", dev, got, answerer(dev))
		}
	}

	// Alice leaves: the first sidecar still routes the port for bob.
	if err := first.unsubscribe(alice, 8000); err != nil {
		t.Fatal(err)
	}
	if got := request(t, first, app, "bob"); got != "bob" {
		t.Fatalf("after alice left, bob's request answered by %q", got)
	}
	if got := request(t, first, app, "alice"); got != "app" {
		t.Fatalf("after alice left, her request answered by %q; want the app", got)
	}

	// The router stops: the second sidecar takes the port.
	first.close()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(ports(second), 8000) {
		if time.Now().After(deadline) {
			t.Fatal("the second sidecar did not take port 8000 within 5 s of the router's end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := request(t, second, app, "bob"); got != "bob" {
		t.Fatalf("routed by the second sidecar, bob's request answered by %q", got)
	}
}

// sharingSidecar is a sidecar's incoming traffic, named name, serving its peer socket.
func sharingSidecar(t *testing.T, name string) *incoming {
	t.Helper()
	return loggingSharingSidecar(t, name, slog.New(slog.DiscardHandler))
}

// loggingSharingSidecar is sharingSidecar logging to log.
func loggingSharingSidecar(t *testing.T, name string, log *slog.Logger) *incoming {
	t.Helper()
	in := newIncoming(log, name)
	ln, err := listenPeers(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = newPeers(log, in, newIdleTimer(time.Hour), func() wire.SessionsReply {
			return wire.SessionsReply{Sessions: []wire.SessionInfo{{Label: name + "-user"}}}
		}).serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		in.close()
	})
	return in
}

func mustSubscribe(t *testing.T, in *incoming, client *quic.Conn, label string, req wire.Subscribe) {
	t.Helper()
	if err := in.subscribe(t.Context(), client, label, req); err != nil {
		t.Fatalf("%s subscribes %+v: %v", label, req, err)
	}
}

// ports lists the ports in's table redirects.
func ports(in *incoming) []uint16 {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.table == nil {
		return nil
	}
	return in.table.Ports()
}

// servePlugin answers, as the plugin's program would, every request that reaches plugin with
// a body naming who answered.
func servePlugin(t *testing.T, plugin *quic.Conn, who string) {
	go func() {
		for {
			stream, err := plugin.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer stream.Close()
				if _, err := wire.NewReader(stream).ReadMessage(); err != nil {
					return
				}
				answerHTTP(stream, who)
			}()
		}
	}()
}

// answerHTTP answers each request read from c with a body of who.
func answerHTTP(c io.ReadWriter, who string) {
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(who), who); err != nil {
			return
		}
	}
}

// serveApp is the pod's app, on loopback port 8000 (the test's own network namespace),
// answering "app".
func serveApp(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				answerHTTP(c, "app")
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// request sends one request marked for dev (unmarked when empty) through in's filters, as a
// connection redirected from the app's port app, and returns who answered.
func request(t *testing.T, in *incoming, app netip.AddrPort, dev string) string {
	t.Helper()
	return requests(t, in, app, dev)[0]
}

// requests sends one request marked for each of devs, one after the other on one connection,
// and returns who answered each.
func requests(t *testing.T, in *incoming, app netip.AddrPort, devs ...string) []string {
	t.Helper()
	client, redirected := tcpPair(t)
	defer client.Close()
	in.mu.Lock()
	subs, changed := slices.Clone(in.subs[8000]), in.changed[8000]
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer redirected.Close()
		if len(subs) == 0 {
			in.passThrough(ctx, redirected, app, nil)
			return
		}
		from := client.LocalAddr().(*net.TCPAddr).AddrPort()
		in.routeRequests(ctx, redirected, from, app, subs, changed, wire.Incoming{Port: 8000, Remote: from.String()})
	}()
	defer func() { <-done }()
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	replies := bufio.NewReader(client)
	var answers []string
	for _, dev := range devs {
		mark := ""
		if dev != "" {
			mark = "X-Dev: " + dev + "\r\n"
		}
		if _, err := fmt.Fprintf(client, "GET / HTTP/1.1\r\nHost: app\r\n%s\r\n", mark); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(replies, nil)
		if err != nil {
			t.Fatalf("request for %q: %v", dev, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, string(body))
	}
	_ = client.CloseWrite()
	return answers
}

func answerer(dev string) string {
	if dev == "" {
		return "app"
	}
	return dev
}

// A share whose sidecar name is not a container name is refused (its label is checked as it is
// decoded), and so is anything but a steal.
func TestShareRefusesWhatCannotReachAUser(t *testing.T) {
	in := newIncoming(slog.New(slog.DiscardHandler), "remocal-router")
	defer in.close()
	steal := wire.Subscribe{Port: 8000, Mode: wire.ModeSteal, Header: "X-Dev: x"}
	for name, ask := range map[string]wire.PeerJoin{
		"sidecar not a name": {Subscribe: steal, Sidecar: "../remocal-a", Label: "bob"},
		"mirror":             {Subscribe: wire.Subscribe{Port: 8000, Mode: wire.ModeMirror}, Sidecar: "remocal-a", Label: "bob"},
		"nobody routes it":   {Subscribe: steal, Sidecar: "remocal-a", Label: "bob"},
	} {
		m := &member{gone: make(chan struct{}), end: func() {}, sidecar: ask.Sidecar}
		if err := in.addMember(t.Context(), m, ask); err == nil {
			t.Errorf("%s: share taken", name)
		}
	}
}

// A sidecar lists the sessions of the pod's other sidecars, found by their peer sockets, under
// the names of those sidecars, never as the asker's own.
func TestOtherSidecarsSessions(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	sharingSidecar(t, "remocal-first")
	sharingSidecar(t, "remocal-second")
	// Anything in the pod may bind a peer socket and never answer: the listing waits a
	// second for all of them together, not a second each.
	for i := range 5 {
		silent, err := listenPeers(fmt.Sprintf("remocal-silent-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
	}
	began := time.Now()
	got := otherSidecarsSessions(t.Context(), slog.New(slog.DiscardHandler), "remocal-second")
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("listing with 5 silent peers took %s; want about a second", took)
	}
	if len(got) != 1 || got[0].Sidecar != "remocal-first" || got[0].Label != "remocal-first-user" || got[0].Mine {
		t.Fatalf("sessions of the other sidecars = %+v; want remocal-first's one", got)
	}
}

// A keep-alive connection whose first request is another sidecar's share is handed over to that
// sidecar, which serves its requests from then on: its share's own, unless a share subscribed
// earlier matches too; the others it sends back to the router. A change of the port's shares
// ends the connection, as it ends those the router relays.
func TestConnectionHandedOverToTheSharingSidecar(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	var logged syncbuf.Buffer
	first := loggingSharingSidecar(t, "remocal-first", slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	second := sharingSidecar(t, "remocal-second")
	alice, alicePlugin := quicPair(t)
	bob, bobPlugin := quicPair(t)
	servePlugin(t, alicePlugin, "alice")
	servePlugin(t, bobPlugin, "bob")
	app := serveApp(t)
	mustSubscribe(t, first, alice, "alice@laptop", wire.Subscribe{Port: 8000, Mode: wire.ModeSteal, Header: "X-Dev: ^(alice|both)$"})
	mustSubscribe(t, second, bob, "bob@laptop", wire.Subscribe{Port: 8000, Mode: wire.ModeSteal, Header: "X-Dev: ^(bob|both)$"})

	devs := []string{"bob", "bob", "both", "alice", "", "bob"}
	want := []string{"bob", "bob", "alice", "alice", "app", "bob"}
	if got := requests(t, first, app, devs...); !slices.Equal(got, want) {
		t.Fatalf("requests for %q answered by %q; want %q", devs, got, want)
	}
	if !strings.Contains(logged.String(), "connection handed over") {
		t.Fatalf("the router did not hand the connection over; it logged:\n%s", logged.String())
	}

	// A connection that starts with the router's own share stays with the router until a
	// request of bob's comes: then it is handed over.
	if got := requests(t, first, app, "alice", "", "bob", "both"); !slices.Equal(got, []string{"alice", "app", "bob", "alice"}) {
		t.Fatalf("a connection handed over after two requests: answered by %q", got)
	}
}

// A member's sidecar from before hand-overs closes at the message it does not know: the
// router keeps the connection, unread, and delivers to that sidecar for a while.
func TestHandOverToASidecarThatCannot(t *testing.T) {
	old := "remocal-old"
	ln, err := listenPeers(old)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = wire.NewReader(c).ReadMessage()
			c.Close()
		}
	}()
	in := newIncoming(slog.New(slog.DiscardHandler), "remocal-router")
	m := &member{sidecar: old}
	client, redirected := tcpPair(t)
	defer client.Close()
	defer redirected.Close()
	ask := wire.PeerHandOver{Incoming: wire.Incoming{Port: 8000, Remote: "198.18.0.7:41234"}}
	if _, taken, err := in.handOver(t.Context(), m, redirected, []byte("GET / HTTP/1.1\r\n\r\n"), ask); err == nil || taken {
		t.Fatalf("a sidecar that closed took the connection over (err %v)", err)
	}
	if _, taken, err := in.handOver(t.Context(), m, redirected, nil, ask); taken || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("the second hand-over to it: taken %v, %v; want deliveries for now, ErrUnsupported at once", taken, err)
	}
	// The connection is still the router's, whole.
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	_ = redirected.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(redirected, got); err != nil || string(got) != "ping" {
		t.Fatalf("the router's connection after a refused hand-over read %q, %v", got, err)
	}
}

// Descriptors come only with a hand-over's first byte: a peer that sends one with every byte of
// a message cannot make the sidecar hold them.
func TestPeerDescriptorsNotHeld(t *testing.T) {
	name := "remocal-fds"
	sharingSidecar(t, name)
	c, err := dialPeer(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	frame, err := wire.AppendMessage(nil, wire.PeerJoin{Subscribe: wire.Subscribe{Port: 8000, Mode: wire.ModeSteal, Header: "X-Dev: " + strings.Repeat("x", 200)}, Sidecar: "remocal-other", Label: "l"})
	if err != nil {
		t.Fatal(err)
	}
	before := openFiles(t)
	const sent = 100
	for _, b := range frame[:sent] { // not the whole message: the sidecar waits for the rest
		if _, _, err := c.WriteMsgUnix([]byte{b}, unix.UnixRights(pipe[0]), nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the sidecar reads what came
	if held := openFiles(t) - before; held > 2 {
		t.Errorf("the sidecar holds %d more descriptors after %d came one per byte; want at most 1", held, sent)
	}
}

// A route back must name a hand-over in progress: anything else in the pod that sends one is
// closed before any request is routed.
func TestRouteBackNeedsAHandOver(t *testing.T) {
	name := "remocal-routes"
	sharingSidecar(t, name)
	c, err := dialPeer(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := wire.WriteMessage(c, wire.PeerRoute{Route: wire.PeerToken{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: app\r\n\r\n"); errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return // closed already, on the route back alone
	} else if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n > 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a route back for no hand-over: read %d bytes, %v; want the connection closed", n, err)
	}
}
