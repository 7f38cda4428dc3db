package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/remocal/kubectl-remocal/internal/ratelog"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The sidecars of a pod meet on abstract Unix sockets. An abstract socket lives in the network
// namespace that bound it: the pod's, which all its sidecars share and nothing outside the pod
// reaches, so the sidecars find each other with no cluster component and no RBAC. Each sidecar
// listens on its own, named after its container (peerSocket); the redirect table's rules name
// the container that holds a port, so a sidecar that finds a port taken knows whom to ask.
//
// Anything running in the pod can connect too. A process there already has the pod's traffic
// in reach, so what a peer may ask for is no more than that: a share of a port by filter
// (shares.go), whose requests it could have had from the app. The messages are bounded like
// the clients' (pkg/wire), a peer gets 5 s to say what it wants, and at most maxPeerConns are
// open at once, so a hostile peer cannot hold the sidecar's memory.

const (
	// peerSocketPrefix, with the sidecar's container name, is its peer socket.
	peerSocketPrefix = "@remocal-sidecar-"
	// maxPeerConns bounds the peer connections open at once: each share holds one, and so
	// does each connection the router delivers or hands over to a sharing sidecar.
	maxPeerConns = 1024
	// maxRouteBacks bounds, apart, the connections on which sharing sidecars send requests
	// back to the router (PeerRoute): a connection handed over may keep one for each share
	// before its own and one for the app, idle between requests, and they must not take
	// the places of joins and deliveries.
	maxRouteBacks = 1024
	// peerHeaderTimeout bounds the wait for a peer's first message, and for a join's answer.
	peerHeaderTimeout = 5 * time.Second
)

// containerName is what Kubernetes accepts as a container name (a DNS label): anything else in
// a table's rules was not written by a sidecar, and is not dialled.
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// peerSocket is the address of the peer socket of the sidecar named name, or "" for a name no
// sidecar could have.
func peerSocket(name string) string {
	if !containerName.MatchString(name) {
		return ""
	}
	return peerSocketPrefix + name
}

// dialPeer connects to the peer socket of the sidecar named name.
func dialPeer(ctx context.Context, name string) (*net.UnixConn, error) {
	addr := peerSocket(name)
	if addr == "" {
		return nil, fmt.Errorf("no sidecar is named %q", name)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// peers serves this sidecar's peer socket.
type peers struct {
	log  *slog.Logger
	in   *incoming
	idle *idleTimer
	// sessions lists this sidecar's sessions for another sidecar's listing.
	sessions func() wire.SessionsReply
	open     *semaphore.Weighted
	// routeBacks holds the places of the route-back connections, which give back their
	// place among open once they say what they are.
	routeBacks *semaphore.Weighted
	refusal    *ratelog.Limiter
	wg         sync.WaitGroup
}

// newPeers serves in's shares to the pod's other sidecars, and the sessions listings; a share
// counts as a client of idle.
func newPeers(log *slog.Logger, in *incoming, idle *idleTimer, sessions func() wire.SessionsReply) *peers {
	return &peers{log: log, in: in, idle: idle, sessions: sessions, open: semaphore.NewWeighted(maxPeerConns), routeBacks: semaphore.NewWeighted(maxRouteBacks), refusal: ratelog.New(refusalLogEvery)}
}

// listenPeers opens the peer socket of the sidecar named name. A sidecar without a name (in
// tests) has none, and shares no port with other sidecars.
func listenPeers(name string) (*net.UnixListener, error) {
	addr := peerSocket(name)
	if addr == "" {
		return nil, nil
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen for the pod's other sidecars: %w", err)
	}
	return ln, nil
}

// serve accepts peer connections until ctx ends.
func (p *peers) serve(ctx context.Context, ln *net.UnixListener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer p.wg.Wait()
	var wait time.Duration
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			p.log.WarnContext(ctx, "accept a peer connection", "err", err, "retryIn", wait)
			time.Sleep(wait)
			continue
		}
		wait = 0
		if !p.open.TryAcquire(1) {
			p.refuse(ctx, c, "too many peer connections")
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			release := sync.OnceFunc(func() { p.open.Release(1) })
			defer release()
			p.handle(ctx, c, release)
		}()
	}
}

// handle serves one peer connection by its first message. release gives back the connection's
// place among maxPeerConns, for one that takes another.
func (p *peers) handle(ctx context.Context, c *net.UnixConn, release func()) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(peerHeaderTimeout))
	passed := &fdReader{c: c} // a hand-over brings a connection
	defer passed.close()
	msg, err := wire.NewReader(passed).ReadMessage()
	if err != nil {
		p.refuse(ctx, c, "no first message: "+err.Error())
		return
	}
	if _, ok := msg.(wire.PeerHandOver); !ok {
		passed.close() // a descriptor comes only with a hand-over
	}
	_ = c.SetReadDeadline(time.Time{})
	switch m := msg.(type) {
	case wire.PeerJoin:
		// A share keeps the sidecar in use, as its client would: the sidecar routes the
		// port for the other sidecar's session.
		disconnected := p.idle.Connected()
		defer disconnected(true)
		p.in.admit(ctx, c, m)
	case wire.PeerDeliver:
		p.in.deliver(ctx, c, m)
	case wire.PeerHandOver:
		p.in.takeOver(ctx, c, m, passed.take())
	case wire.PeerRoute:
		if !p.routeBacks.TryAcquire(1) {
			p.refuse(ctx, c, "too many connections routed back")
			return
		}
		defer p.routeBacks.Release(1)
		release()
		p.in.routeFor(ctx, c, m)
	case wire.Sessions:
		// Another sidecar lists the pod's sessions for its user.
		_ = c.SetWriteDeadline(time.Now().Add(peerHeaderTimeout))
		_ = wire.WriteMessage(c, p.sessions())
	default:
		p.refuse(ctx, c, fmt.Sprintf("unexpected first message %T", msg))
	}
}

// refuse closes a peer connection that asked for nothing this sidecar serves.
func (p *peers) refuse(ctx context.Context, c *net.UnixConn, why string) {
	c.Close()
	if n, ok := p.refusal.Allow(); ok {
		p.log.WarnContext(ctx, "refused a peer connection", "reason", why, "notLogged", n)
	}
}

// Bounds on what a listing asks of the other sidecars: anything in the pod can bind peer
// sockets, so neither their number nor their answers may make a listing slow or too large.
const (
	// maxPeersAsked bounds the sidecars asked; a pod has a few.
	maxPeersAsked = 32
	// maxOtherSessions bounds the sessions taken from them, well within what one listing
	// holds beside this sidecar's own (at most maxClients).
	maxOtherSessions = 128
)

// otherSidecarsSessions asks the pod's other sidecars for their sessions, all at once, within a
// second: they are found by their peer sockets, which /proc/net/unix lists for the network
// namespace of its reader. A sidecar that does not answer is left out, and so is the remainder
// past the bounds above.
func otherSidecarsSessions(ctx context.Context, log *slog.Logger, self string) []wire.SessionInfo {
	names, err := peerNames()
	if err != nil {
		log.WarnContext(ctx, "list the pod's other sidecars", "err", err)
		return nil
	}
	names = slices.DeleteFunc(names, func(name string) bool { return name == self })
	names = names[:min(len(names), maxPeersAsked)]
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	lists := make([][]wire.SessionInfo, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			list, err := askSessions(ctx, name)
			if err != nil {
				log.InfoContext(ctx, "another sidecar of the pod did not list its sessions", "sidecar", name, "err", err)
			}
			lists[i] = list
		})
	}
	wg.Wait()
	var all []wire.SessionInfo
	for i, list := range lists {
		for _, s := range list {
			if len(all) == maxOtherSessions {
				return all
			}
			s.Mine = false
			s.Sidecar = names[i] // what it may not claim: to be another sidecar
			all = append(all, s)
		}
	}
	return all
}

// askSessions asks the sidecar named name for its sessions, within ctx.
func askSessions(ctx context.Context, name string) ([]wire.SessionInfo, error) {
	c, err := dialPeer(ctx, name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if err := wire.WriteMessage(c, wire.Sessions{}); err != nil {
		return nil, err
	}
	msg, err := wire.NewReader(c).ReadMessage()
	if err != nil {
		return nil, err
	}
	reply, ok := msg.(wire.SessionsReply)
	if !ok {
		return nil, fmt.Errorf("answered %T", msg)
	}
	return reply.Sessions, nil
}

// peerNames lists the names of the sidecars whose peer sockets are bound in this network
// namespace, in order.
func peerNames() ([]string, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) < 8 {
			continue
		}
		name, ok := strings.CutPrefix(fields[len(fields)-1], peerSocketPrefix)
		// A listening socket's line, not those of its accepted connections, which carry the
		// same address: state 01 (SS_UNCONNECTED) with the listening flag.
		if ok && fields[3] == "00010000" && peerSocket(name) != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, lines.Err()
}
