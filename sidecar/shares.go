package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/redirect"
)

// Shares: sessions of several sidecars of one pod steal one port, each its own HTTP requests.
//
// One sidecar redirects the port, the first that took it: the router. Every other sidecar
// whose session steals the port by filter joins the router's subscriptions (PeerJoin on the
// router's peer socket) and keeps that connection open for as long as its session keeps the
// port. The router routes each request among its own sessions and the members alike, the
// earliest subscription first; a member's connections it delivers to the member's sidecar
// (PeerDeliver on that sidecar's peer socket), which carries them to its client as if they had
// been redirected to it.
//
// The router goes on routing the port while members share it, after its own session gave the
// port up. When the router dies, or drops the share, the member's connection to it ends, and
// the member's sidecar takes the port over (rehome): under the pod's lock, it removes the dead
// router's table, and redirects the port itself for its sessions, or joins the sidecar that got
// there first. Clients connected through the dead router reconnect, and are routed anew.

// member is a session of another sidecar whose share of a port this sidecar routes.
type member struct {
	// gone is closed when the share ends: the other sidecar closed its connection, or this
	// one stops.
	gone <-chan struct{}
	// end ends the share from this side: this sidecar stops.
	end     context.CancelFunc
	sidecar string
	token   wire.PeerToken
	// handOverAfter (Unix nanoseconds): until then its sidecar gets deliveries rather than
	// hand-overs (handover.go), having closed at one.
	handOverAfter atomic.Int64
}

// joined is one of our sessions' share of a port that another sidecar routes.
type joined struct {
	conn   *net.UnixConn // to the router; closing it ends the share
	router string
	token  wire.PeerToken
}

// holder is the sidecar whose table redirects a port.
type holder struct {
	sidecar, table string
}

// errNoRouter: the sidecar that redirects a port cannot be asked to share it (an older
// sidecar, or one gone since).
var errNoRouter = errors.New("no peer socket")

// lockPod takes the pod's redirect lock: every change of which sidecar redirects a port is made
// under it, and it is taken before mu.
func lockPod(ctx context.Context) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return redirect.Lock(ctx)
}

// join asks the sidecar h to route sub's share of port. Called with the pod's lock and mu
// held: under the pod's lock, no other sidecar is joining, so two never wait for each other.
func (in *incoming) join(ctx context.Context, h holder, sub subscription) (*joined, error) {
	token, err := wire.NewPeerToken()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, peerHeaderTimeout)
	defer cancel()
	c, err := dialPeer(ctx, h.sidecar)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoRouter, err)
	}
	_ = c.SetDeadline(time.Now().Add(peerHeaderTimeout))
	ask := wire.PeerJoin{Subscribe: sub.asked, Sidecar: in.holder, Label: sub.label, SinceUnixNano: sub.since.UnixNano(), Token: token}
	if err := wire.WriteMessage(c, ask); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", errNoRouter, err)
	}
	msg, err := wire.NewReader(c).ReadMessage()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", errNoRouter, err)
	}
	reply, ok := msg.(wire.SubscribeReply)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("sidecar %s answered a share with %T", h.sidecar, msg)
	}
	if err := reply.Err(); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return &joined{conn: c, router: h.sidecar, token: token}, nil
}

// share adds sub to port, routed by the sidecar h. Called with the pod's lock and mu held.
func (in *incoming) share(ctx context.Context, port uint16, h holder, sub subscription) error {
	j, err := in.join(ctx, h, sub)
	if errors.Is(err, errNoRouter) {
		in.log.InfoContext(ctx, "cannot share a port with the sidecar that redirects it", "port", port, "sidecar", h.sidecar, "err", err)
		return fmt.Errorf("port %d is taken by another sidecar of this pod, %s (nftables table %s): %w", port, h.sidecar, h.table, syscall.EADDRINUSE)
	}
	if err != nil {
		return err
	}
	sub.joined = j
	in.subs[port] = bySince(append(in.subs[port], sub))
	// The share outlives the request that made it.
	in.watch(context.WithoutCancel(ctx), port, j)
	in.log.InfoContext(ctx, "port shared: another sidecar of the pod routes it", "port", port, "router", h.sidecar, "header", sub.header, "path", sub.path)
	return nil
}

// watch waits, beside the caller, for the end of the share j of port: unless our session gave
// the port up, its router is gone, or dropped it, and the port has to be routed again.
func (in *incoming) watch(ctx context.Context, port uint16, j *joined) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		// The router sends nothing after its answer: a read returns at the end.
		_, _ = j.conn.Read(make([]byte, 1))
		j.conn.Close()
		in.rehome(ctx, port, j)
	}()
}

// rehome routes again the share j of port that its router ended, until it is routed or our
// session gives the port up.
func (in *incoming) rehome(ctx context.Context, port uint16, j *joined) {
	var wait time.Duration
	for {
		done, err := in.tryRehome(ctx, port, j)
		if done {
			return
		}
		wait = min(max(2*wait, 20*time.Millisecond), time.Second)
		in.log.WarnContext(ctx, "route a shared port again", "port", port, "err", err, "retryIn", wait)
		time.Sleep(wait)
	}
}

// tryRehome makes one attempt at routing the share j of port again. done says that no more
// is needed: it is routed, or no longer ours to route.
func (in *incoming) tryRehome(ctx context.Context, port uint16, j *joined) (done bool, err error) {
	unlock, err := lockPod(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	in.mu.Lock()
	defer in.mu.Unlock()
	i := slices.IndexFunc(in.subs[port], func(s subscription) bool { return s.joined == j })
	if i < 0 {
		return true, nil // given up, or routed here already by another share's rehoming
	}
	sub := in.subs[port][i]
	// A router killed with its guard leaves its table, which would send the port to a dead
	// listener until its lease lapsed.
	removeDeadTables(ctx, in.log)
	if in.table == nil {
		if err := in.start(ctx); err != nil {
			return false, err
		}
	}
	h, err := in.holderElsewhere(ctx, port)
	if err != nil {
		return false, err
	}
	if h != nil {
		nj, err := in.join(ctx, *h, sub)
		if err != nil {
			return false, err
		}
		in.subs[port][i].joined = nj
		in.watch(ctx, port, nj)
		in.stopIfIdle()
		in.log.InfoContext(ctx, "shared port routed by another sidecar now", "port", port, "from", j.router, "to", h.sidecar)
		return true, nil
	}
	if err := in.table.Redirect(port, uint16(in.ln.Addr().(*net.TCPAddr).Port)); err != nil {
		return false, err
	}
	// Every share of the port had the same router; this sidecar routes them all now.
	for k := range in.subs[port] {
		if other := in.subs[port][k].joined; other != nil {
			other.conn.Close()
			in.subs[port][k].joined = nil
		}
	}
	in.change(port)
	in.log.InfoContext(ctx, "routing a shared port: the sidecar that routed it ended the share", "port", port, "was", j.router)
	return true, nil
}

// admit serves a PeerJoin on c: a session of another sidecar shares port by filter, routed by
// this sidecar, until c ends.
func (in *incoming) admit(ctx context.Context, c *net.UnixConn, ask wire.PeerJoin) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &member{gone: ctx.Done(), end: cancel, sidecar: ask.Sidecar, token: ask.Token}
	err := in.addMember(ctx, m, ask)
	if werr := wire.WriteMessage(c, subscribeReply(err)); err != nil || werr != nil {
		return
	}
	defer in.dropWhere(ask.Subscribe.Port, func(s subscription) bool { return s.member == m })
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// The member says nothing more: the share ends with its connection, closed when its
	// session gives the port up, and by the kernel when its sidecar dies.
	_, _ = c.Read(make([]byte, 1))
}

// maxMembers bounds the other sidecars' sessions that share one port.
const maxMembers = 64

// addMember takes m's share of a port this sidecar routes.
func (in *incoming) addMember(ctx context.Context, m *member, ask wire.PeerJoin) error {
	port := ask.Subscribe.Port
	// It reaches other users' terminals, in refusals and listings (the label is checked
	// as it is decoded: wire.CheckLabel).
	if peerSocket(ask.Sidecar) == "" {
		return fmt.Errorf("a share names its sidecar by its container name, not %q: %w", ask.Sidecar, syscall.EINVAL)
	}
	if ask.Subscribe.Mode != wire.ModeSteal {
		return fmt.Errorf("only steals by HTTP filter share a port across sidecars, not a %s: %w", ask.Subscribe.Mode, syscall.EOPNOTSUPP)
	}
	filter, err := requestFilter(ask.Subscribe)
	if err != nil {
		return err
	}
	want := subscription{member: m, label: ask.Label, sidecar: ask.Sidecar, since: time.Unix(0, ask.SinceUnixNano), asked: ask.Subscribe, mode: ask.Subscribe.Mode, filter: filter, header: ask.Subscribe.Header, path: ask.Subscribe.Path}
	if ask.Subscribe.Filter != nil {
		want.tree = httpfilter.Format(*ask.Subscribe.Filter)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	subs := in.subs[port]
	if len(subs) == 0 || !subs[0].routedHere() {
		return fmt.Errorf("sidecar %s does not redirect port %d: %w", in.holder, port, syscall.ENOENT)
	}
	if n := len(slices.DeleteFunc(slices.Clone(subs), func(s subscription) bool { return s.member == nil })); n >= maxMembers {
		return fmt.Errorf("port %d is shared by %d other sessions already, the most it may: %w", port, n, syscall.ENOSPC)
	}
	if err := sharable(port, subs, want); err != nil {
		return err
	}
	in.subs[port] = bySince(append(subs, want))
	in.change(port)
	in.log.InfoContext(ctx, "port shared with another sidecar's session", "port", port, "sidecar", ask.Sidecar, "label", ask.Label, "header", want.header, "path", want.path, "sharedBy", len(subs)+1)
	return nil
}

// deliver serves a PeerDeliver on c: a connection the router routed to one of our sessions'
// shares, carried on to its client.
func (in *incoming) deliver(ctx context.Context, c *net.UnixConn, d wire.PeerDeliver) {
	sub, ok := in.shareOf(d.Incoming.Port, d.Token)
	if !ok {
		in.log.DebugContext(ctx, "refused a delivery for no share of ours", "port", d.Incoming.Port, "token", d.Token)
		return
	}
	in.carry(sub, c, d.Incoming)
}

// carry relays the connection c that arrived for sub's client, on one of the client's lanes or
// a stream it opens.
func (in *incoming) carry(sub subscription, c halfCloser, arrival wire.Incoming) {
	if in.lanes != nil {
		if l, ok := in.lanes(sub.client, arrival); ok {
			relayLane(l.Lane, c)
			return
		}
	}
	stream, err := openIncoming(sub.client, arrival)
	if err != nil {
		in.log.Warn("carry an incoming connection to the client", "port", arrival.Port, "err", err)
		return
	}
	relay(stream, c)
}

// deliverTo connects to m's sidecar for a connection that arrived for m's share.
func deliverTo(ctx context.Context, m *member, arrival wire.Incoming) (net.Conn, error) {
	c, err := dialPeer(ctx, m.sidecar)
	if err != nil {
		return nil, err
	}
	if err := wire.WriteMessage(c, wire.PeerDeliver{Token: m.token, Incoming: arrival}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// bySince orders a port's subscriptions by when they were taken, which decides among
// overlapping filters.
func bySince(subs []subscription) []subscription {
	slices.SortStableFunc(subs, func(a, b subscription) int { return a.since.Compare(b.since) })
	return subs
}

// halfCloser is a connection whose sending side closes alone.
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}
