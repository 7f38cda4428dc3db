package sidecar

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/capture"
)

// The subscription registry: which clients hold which of the pod's ports, in which mode, and
// whether a new subscription may share a port with those it finds there.

// subscription is one session's hold on a pod port.
type subscription struct {
	// client is the session, when it is one of this sidecar's; nil for a member.
	client *quic.Conn
	// member is a session of another sidecar of the pod whose share of the port this sidecar
	// routes (shares.go); nil for one of ours.
	member *member
	// joined, for one of our sessions, is its share of a port another sidecar routes; nil
	// where this sidecar redirects the port itself.
	joined *joined
	// label is the session's user label; sidecar names the sidecar it is a session of.
	label, sidecar string
	// since is when the session subscribed the port: among overlapping filters the earliest
	// takes a request, whichever sidecar routes the port.
	since time.Time
	// asked is the subscription as the session asked for it, to ask a router for it again.
	asked  wire.Subscribe
	mode   string             // wire.ModeSteal or wire.ModeMirror
	filter *httpfilter.Filter // for a steal of only some HTTP requests, or nil
	// header, path and tree are the filter as the client wrote it, to tell two filters apart;
	// tree is the wire.Subscribe's Filter as httpfilter.Format writes it, or "".
	header, path, tree string
	// capture copies the port's connections for a mirror without redirecting them; nil for
	// a redirected port.
	capture *capture.Capture
}

func (s subscription) describe() string {
	if s.filter == nil {
		return s.mode
	}
	if s.tree == "" {
		return fmt.Sprintf("%s of the HTTP requests matching header %q path %q", s.mode, s.header, s.path)
	}
	return fmt.Sprintf("%s of the HTTP requests matching header %q path %q filter %s", s.mode, s.header, s.path, s.tree)
}

// sameFilter reports whether s and o filter the same requests, as written.
func (s subscription) sameFilter(o subscription) bool {
	return s.header == o.header && s.path == o.path && s.tree == o.tree
}

// whose names the session that holds s, for a user refused the port: its label, its sidecar
// and since when it holds the port.
func (s subscription) whose() string {
	label := s.label
	if label == "" {
		label = "an unlabelled session"
	}
	return fmt.Sprintf("%s (sidecar %s, since %s UTC)", label, s.sidecar, s.since.UTC().Format(time.DateTime))
}

// sameSession tells whether s and o are subscriptions of one session.
func (s subscription) sameSession(o subscription) bool {
	if s.member != nil || o.member != nil {
		return s.member == o.member
	}
	return s.client == o.client
}

// routedHere tells whether this sidecar's table redirects the subscription's port: a steal,
// or a mirror by redirect, that no other sidecar routes.
func (s subscription) routedHere() bool { return s.capture == nil && s.joined == nil }

// subscribe sends the pod's new connections on port to client: all of them (steal), or a copy
// of each (mirror). label is the session's user label.
func (in *incoming) subscribe(ctx context.Context, client *quic.Conn, label string, req wire.Subscribe) error {
	port, mode := req.Port, req.Mode
	if mode != wire.ModeSteal && mode != wire.ModeMirror {
		return fmt.Errorf("subscription mode %q: %w", mode, syscall.EOPNOTSUPP)
	}
	filter, err := requestFilter(req)
	if err != nil {
		return err
	}
	want := subscription{client: client, label: label, sidecar: in.holder, since: time.Now(), asked: req, mode: mode, filter: filter, header: req.Header, path: req.Path}
	if req.Filter != nil {
		want.tree = httpfilter.Format(*req.Filter)
	}
	unlock, err := lockPod(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	in.mu.Lock()
	defer in.mu.Unlock()
	if subs := in.subs[port]; len(subs) > 0 {
		if err := sharable(port, subs, want); err != nil {
			return err
		}
		if slices.ContainsFunc(subs, want.sameSession) {
			return nil // the same subscription again
		}
		if j := subs[0].joined; j != nil {
			// Another sidecar routes the port for our sessions: this one joins them there.
			return in.share(ctx, port, holder{sidecar: j.router}, want)
		}
		in.subs[port] = append(subs, want) // the port is redirected already
		in.change(port)
		in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode, "header", req.Header, "path", req.Path, "filter", want.tree, "sharedBy", len(subs)+1)
		return nil
	}
	if mode == wire.ModeMirror {
		c, err := in.captures.Listen(port, func(f capture.Flow) io.WriteCloser {
			return newMirrorCopy(in.log, in.copies, client, wire.Incoming{Port: port, Remote: f.Client.String()})
		})
		if err == nil {
			want.capture = c
			in.subs[port] = []subscription{want}
			in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode, "by", "packet capture")
			return nil
		}
		in.log.WarnContext(ctx, "cannot capture the port's packets: mirroring by redirect, through the sidecar", "port", port, "err", err)
	}
	if in.table == nil {
		if err := in.start(ctx); err != nil {
			return err
		}
	}
	h, err := in.holderElsewhere(ctx, port)
	if err == nil && h != nil {
		// Another live sidecar redirects the port: a share there, or a refusal naming whose
		// the port is.
		err = in.share(ctx, port, *h, want)
		in.stopIfIdle()
		return err
	}
	if err == nil {
		err = in.redirect(port)
	}
	if err != nil {
		in.stopIfIdle() // a table made for this subscription alone goes with it
		return err
	}
	in.subs[port] = []subscription{want}
	in.change(port)
	in.log.InfoContext(ctx, "port subscribed", "port", port, "mode", mode, "header", req.Header, "path", req.Path, "filter", want.tree)
	return nil
}

// list reports every subscription, ordered by port and then by the order they were taken;
// Mine marks those of client.
func (in *incoming) list(client *quic.Conn) []wire.SubscriptionInfo {
	in.mu.Lock()
	defer in.mu.Unlock()
	ports := make([]uint16, 0, len(in.subs))
	for port := range in.subs {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	var list []wire.SubscriptionInfo
	for _, port := range ports {
		for _, s := range in.subs[port] {
			info := wire.SubscriptionInfo{
				Port:    port,
				Mode:    s.mode,
				Header:  s.header,
				Path:    s.path,
				Mine:    s.member == nil && s.client == client,
				Capture: s.capture != nil,
			}
			if s.member != nil {
				info.Client = "sidecar " + s.sidecar
			} else {
				info.Client = s.client.RemoteAddr().String()
			}
			list = append(list, info)
		}
	}
	return list
}

// sharable tells whether want can join the subscriptions subs of port: only filtered steals
// of different clients with different filters share a port, since each whole-port
// subscription, and each request, has one taker.
func sharable(port uint16, subs []subscription, want subscription) error {
	for _, s := range subs {
		switch {
		case s.sameSession(want) && (s.mode != want.mode || !s.sameFilter(want)):
			return fmt.Errorf("port %d is already subscribed by this session to %s: %w", port, s.describe(), syscall.EADDRINUSE)
		case s.sameSession(want):
		case s.filter == nil || want.filter == nil:
			return fmt.Errorf("port %d is taken by another session, %s, to %s: %w", port, s.whose(), s.describe(), syscall.EADDRINUSE)
		case s.sameFilter(want):
			return fmt.Errorf("port %d is taken for the same requests by another session, %s, to %s: %w", port, s.whose(), s.describe(), syscall.EADDRINUSE)
		}
	}
	return nil
}

// requestFilter is the HTTP filter a subscription asks for, or nil for a whole port: the
// request must match each of Header, Path and Filter that is set.
func requestFilter(req wire.Subscribe) (*httpfilter.Filter, error) {
	if req.Header == "" && req.Path == "" && req.Filter == nil {
		return nil, nil
	}
	if req.Mode != wire.ModeSteal {
		return nil, fmt.Errorf("HTTP filters choose what to steal, not what to %s: %w", req.Mode, syscall.EINVAL)
	}
	var f httpfilter.Filter
	var err error
	if req.Header != "" {
		if f.Header, f.HeaderValue, err = httpfilter.ParseHeader(req.Header); err != nil {
			return nil, fmt.Errorf("%w: %w", err, syscall.EINVAL)
		}
	}
	if req.Path != "" {
		if f.Path, err = regexp.Compile(req.Path); err != nil {
			return nil, fmt.Errorf("path filter %q: %w: %w", req.Path, err, syscall.EINVAL)
		}
	}
	if req.Filter != nil {
		tree, err := httpfilter.Compile(*req.Filter)
		if err != nil {
			return nil, fmt.Errorf("http filter: %w: %w", err, syscall.EINVAL)
		}
		f.AllOf = []httpfilter.Filter{tree}
	}
	return &f, nil
}

// unsubscribe ends client's subscription of port; the last one removes the table.
func (in *incoming) unsubscribe(client *quic.Conn, port uint16) error {
	return in.dropWhere(port, func(s subscription) bool { return s.member == nil && s.client == client })
}

// dropClient ends every subscription of a client that went away (closed, or silent for the QUIC
// idle timeout).
func (in *incoming) dropClient(client *quic.Conn) {
	in.mu.Lock()
	ports := make([]uint16, 0, len(in.subs))
	for port := range in.subs {
		ports = append(ports, port)
	}
	in.mu.Unlock()
	for _, port := range ports {
		if err := in.unsubscribe(client, port); err != nil {
			in.log.Error("remove redirect", "port", port, "err", err)
		}
	}
}

// dropWhere ends the subscriptions of port that gone selects, and the port's redirect with
// its last subscription.
func (in *incoming) dropWhere(port uint16, gone func(subscription) bool) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	subs := in.subs[port]
	kept := slices.DeleteFunc(slices.Clone(subs), gone)
	if len(kept) == len(subs) {
		return nil
	}
	for _, s := range subs {
		if s.joined != nil && gone(s) {
			s.joined.conn.Close() // the router drops the share
		}
	}
	if len(kept) > 0 {
		in.subs[port] = kept
		in.change(port)
		return nil
	}
	delete(in.subs, port)
	in.change(port)
	var err error
	switch {
	case subs[0].capture != nil:
		err = subs[0].capture.Close()
	case in.table != nil:
		err = in.table.Remove(port)
	}
	in.stopIfIdle()
	return err
}

// change tells the connections routed by port's subscriptions that these changed. Called with
// mu held.
func (in *incoming) change(port uint16) {
	if ch := in.changed[port]; ch != nil {
		close(ch)
	}
	if _, ok := in.subs[port]; ok {
		in.changed[port] = make(chan struct{})
	} else {
		delete(in.changed, port)
	}
}
