package sidecar

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Handing connections over. A request the router delivers to a member crosses two sidecars
// each way: into the router, over the pod's Unix socket to the member, and out on the
// member's lane. For an HTTP/1 connection whose next request is a member's, the router hands
// the connection itself to the member's sidecar instead (the descriptor passes with a
// PeerHandOver, SCM_RIGHTS), with the bytes it read and did not relay, and drops out of its
// path: the member serves the connection's requests as the router would. Those that are not
// its share's, or that a share subscribed earlier also matches (first subscribed wins), go back
// to the router on a PeerRoute connection. HTTP/2 connections are never handed over: their
// streams may be anyone's at once.
//
// The router keeps the hand-over's socket open while the member serves the connection, and
// closes it when the port's shares change (as it ends the connections it relays itself), so
// that the client's next connection is routed among the shares there are then.

// handOver gives the client connection c of share m, with what was read from it and not
// relayed, to m's sidecar. taken says whether the connection left our hands: then uc is the
// hand-over's socket, or nil when the sidecar did not answer in time (it may serve the
// connection; we must not). Not taken, the connection is still ours, unread.
func (in *incoming) handOver(ctx context.Context, m *member, c *net.TCPConn, buffered []byte, ask wire.PeerHandOver) (uc *net.UnixConn, taken bool, err error) {
	if time.Now().UnixNano() < m.handOverAfter.Load() {
		return nil, false, errors.ErrUnsupported
	}
	if len(buffered) > wire.MaxHandOverBuffered {
		return nil, false, fmt.Errorf("%d bytes read ahead: %w", len(buffered), syscall.E2BIG)
	}
	ask.Buffered = uint32(len(buffered))
	frame, err := wire.AppendMessage(nil, ask)
	if err != nil {
		return nil, false, err
	}
	dialing, cancel := context.WithTimeout(ctx, peerHeaderTimeout)
	uc, err = dialPeer(dialing, m.sidecar)
	cancel()
	if err != nil {
		return nil, false, err
	}
	_ = uc.SetDeadline(time.Now().Add(peerHeaderTimeout))
	// A sidecar from before hand-overs closes at the message it does not know (and so does
	// one with too many peer connections), maybe before we are done sending: it gets
	// deliveries for a while.
	closed := func(err error) (*net.UnixConn, bool, error) {
		m.handOverAfter.Store(time.Now().Add(handOverRetry).UnixNano())
		uc.Close()
		return nil, false, err
	}
	if err := sendWithConn(uc, frame, c); err != nil {
		return closed(err)
	}
	// From here the sidecar may hold the connection. It reads none of it before it has
	// all the bytes read ahead and has answered, and it closes its descriptor before it
	// refuses; so unless it says yes, the connection is still ours, except when it does not
	// answer in time: then nobody knows, and we leave the connection to it.
	if _, err := uc.Write(buffered); err != nil {
		return closed(err)
	}
	reply, err := wire.NewReader(uc).ReadMessage()
	var timeout net.Error
	switch r, ok := reply.(wire.SubscribeReply); {
	case errors.As(err, &timeout) && timeout.Timeout():
		uc.Close()
		return nil, true, fmt.Errorf("no answer to a hand-over within %s: %w", peerHeaderTimeout, err)
	case err != nil:
		return closed(fmt.Errorf("no answer to a hand-over: %w", err))
	case !ok || r.Err() != nil:
		uc.Close()
		return nil, false, fmt.Errorf("hand-over refused: %v", reply)
	}
	_ = uc.SetDeadline(time.Time{})
	return uc, true, nil
}

// handOverRetry is how long a sidecar that closed at a hand-over gets deliveries instead.
const handOverRetry = time.Minute

// sendWithConn writes frame on uc with the descriptor of c beside its first byte.
func sendWithConn(uc *net.UnixConn, frame []byte, c *net.TCPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = raw.Control(func(fd uintptr) {
		var n int
		n, _, werr = uc.WriteMsgUnix(frame, unix.UnixRights(int(fd)), nil)
		if werr == nil && n < len(frame) {
			_, werr = uc.Write(frame[n:])
		}
	})
	return errors.Join(err, werr)
}

// servedElsewhere waits while the sidecar that took a connection over serves it, and ends that
// when ctx does (the port's shares changed, or the share ended).
func servedElsewhere(ctx context.Context, uc *net.UnixConn) {
	defer uc.Close()
	stop := context.AfterFunc(ctx, func() { uc.Close() })
	defer stop()
	_, _ = uc.Read(make([]byte, 1))
}

// takeOver serves a client connection the router handed over for one of our shares (a
// PeerHandOver on uc, with the connection's descriptor fd).
func (in *incoming) takeOver(ctx context.Context, uc *net.UnixConn, h wire.PeerHandOver, fd int) {
	_ = uc.SetDeadline(time.Now().Add(peerHeaderTimeout))
	conn, sub, routes, buffered, err := in.acceptHandOver(uc, h, fd)
	if werr := wire.WriteMessage(uc, subscribeReply(err)); err != nil || werr != nil {
		if conn != nil {
			conn.Close()
		}
		in.log.Debug("refused a hand-over", "port", h.Incoming.Port, "err", err, "replyErr", werr)
		return
	}
	_ = uc.SetDeadline(time.Time{})
	arrival, port := h.Incoming, h.Incoming.Port

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in.mu.Lock()
	changed := in.changed[port]
	in.mu.Unlock()
	go cancelWhenClosed(ctx, changed, cancel)
	stop := context.AfterFunc(sub.client.Context(), cancel)
	defer stop()
	// The router closes the hand-over's socket when the port's shares change: the
	// connection ends then, as the ones the router relays do.
	go func() {
		_, _ = uc.Read(make([]byte, 1))
		cancel()
	}()

	back := func(ctx context.Context) (net.Conn, error) {
		return routeBack(ctx, sub.joined.router, wire.PeerRoute{Route: h.Route})
	}
	for i := range routes {
		routes[i].Dial = back
	}
	routes = append(routes, httpfilter.Route{Filter: *sub.filter, Dial: func(context.Context) (net.Conn, error) {
		return in.dialClient(sub, arrival)
	}})
	if err := httpfilter.ServeRoutes(ctx, httpfilter.Resume(conn, buffered), routes, back); err != nil {
		in.log.Debug("connection handed over ended", "port", port, "from", arrival.Remote, "err", err)
	}
}

// acceptHandOver checks a hand-over and takes what it gives: the client connection, our share
// it is for, the routes of the shares before it (without their Dial), and the bytes that
// come first. The descriptor is closed on any error.
func (in *incoming) acceptHandOver(uc *net.UnixConn, h wire.PeerHandOver, fd int) (*net.TCPConn, subscription, []httpfilter.Route, []byte, error) {
	conn, err := tcpConnOf(fd)
	if err != nil {
		return nil, subscription{}, nil, nil, err
	}
	fail := func(err error) (*net.TCPConn, subscription, []httpfilter.Route, []byte, error) {
		conn.Close()
		return nil, subscription{}, nil, nil, err
	}
	sub, ok := in.shareOf(h.Incoming.Port, h.Token)
	if !ok || sub.filter == nil {
		return fail(fmt.Errorf("no share of port %d has this token: %w", h.Incoming.Port, syscall.EPERM))
	}
	routes := make([]httpfilter.Route, 0, len(h.Before))
	for _, s := range h.Before {
		f, err := requestFilter(s)
		if err != nil || f == nil {
			return fail(fmt.Errorf("a share before ours has no filter we take: %w", syscall.EINVAL))
		}
		routes = append(routes, httpfilter.Route{Filter: *f})
	}
	buffered := make([]byte, h.Buffered)
	if _, err := io.ReadFull(uc, buffered); err != nil {
		return fail(fmt.Errorf("read the bytes handed over: %w", err))
	}
	return conn, sub, routes, buffered, nil
}

// tcpConnOf makes the descriptor fd, which must be a TCP socket, a connection; fd is closed.
func tcpConnOf(fd int) (*net.TCPConn, error) {
	if fd < 0 {
		return nil, fmt.Errorf("no connection came with the hand-over: %w", syscall.EBADF)
	}
	f := os.NewFile(uintptr(fd), "handed-over connection")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("the descriptor handed over: %w", err)
	}
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("the descriptor handed over is a %T, not a TCP connection: %w", c, syscall.ENOTSOCK)
	}
	return tcp, nil
}

// shareOf is our session's share of port that token names.
func (in *incoming) shareOf(port uint16, token wire.PeerToken) (subscription, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	subs := in.subs[port]
	i := slices.IndexFunc(subs, func(s subscription) bool {
		return s.joined != nil && subtle.ConstantTimeCompare(s.joined.token[:], token[:]) == 1
	})
	if i < 0 {
		return subscription{}, false
	}
	return subs[i], true
}

// routeBack connects to the router's peer socket for the requests of a connection handed over
// to us that are not our share's.
func routeBack(ctx context.Context, router string, ask wire.PeerRoute) (net.Conn, error) {
	c, err := dialPeer(ctx, router)
	if err != nil {
		return nil, err
	}
	if err := wire.WriteMessage(c, ask); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handedOver is what the router knows of a connection it handed over, for the requests the
// other sidecar sends back: who the client is and where it connected.
type handedOver struct {
	from, dst netip.AddrPort
	arrival   wire.Incoming
}

// recordHandOver keeps h under a new secret for the PeerRoutes of its connection, until the
// returned forget is called.
func (in *incoming) recordHandOver(h handedOver) (route wire.PeerToken, forget func(), err error) {
	route, err = wire.NewPeerToken()
	if err != nil {
		return route, nil, err
	}
	in.mu.Lock()
	if in.handedOver == nil {
		in.handedOver = map[wire.PeerToken]handedOver{}
	}
	in.handedOver[route] = h
	in.mu.Unlock()
	return route, func() {
		in.mu.Lock()
		delete(in.handedOver, route)
		in.mu.Unlock()
	}, nil
}

// routeFor serves a PeerRoute on c: the requests that the sidecar serving a connection we
// handed over sends back, routed as if they had arrived here on that connection. Only a
// hand-over still in progress has a route: its client and destination are the ones we saw,
// whatever the other end would like them to be.
func (in *incoming) routeFor(ctx context.Context, c *net.UnixConn, r wire.PeerRoute) {
	in.mu.Lock()
	h, ok := in.handedOver[r.Route]
	subs := slices.Clone(in.subs[h.arrival.Port])
	changed := in.changed[h.arrival.Port]
	in.mu.Unlock()
	if !ok || len(subs) == 0 || subs[0].filter == nil {
		in.log.DebugContext(ctx, "refused a route back for no hand-over in progress", "route", r.Route)
		return
	}
	in.routeRequests(ctx, c, h.from, h.dst, subs, changed, h.arrival)
}

// fdReader reads a Unix connection, keeping the descriptors that come with its first read:
// the router sends a hand-over's connection with the message's first byte. Later reads are
// plain, so the kernel drops whatever descriptors come with them: a peer cannot make us hold
// more than maxPassedFDs.
type fdReader struct {
	c    *net.UnixConn
	read bool
	fds  []int
}

// maxPassedFDs is how many descriptors the first read takes; the kernel closes any beyond.
const maxPassedFDs = 1

func (r *fdReader) Read(b []byte) (int, error) {
	if r.read {
		return r.c.Read(b)
	}
	r.read = true
	oob := make([]byte, unix.CmsgSpace(4*maxPassedFDs))
	n, oobn, _, _, err := r.c.ReadMsgUnix(b, oob)
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for i := range msgs {
				if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					r.fds = append(r.fds, fds...)
				}
			}
		}
	}
	return n, err
}

// take returns the one descriptor received, or -1, and closes any other.
func (r *fdReader) take() int {
	fd := -1
	if len(r.fds) == 1 {
		fd, r.fds = r.fds[0], nil
	}
	r.close()
	return fd
}

// close closes the descriptors received and not taken.
func (r *fdReader) close() {
	for _, fd := range r.fds {
		_ = unix.Close(fd)
	}
	r.fds = nil
}
