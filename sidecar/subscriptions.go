package sidecar

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"syscall"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar/capture"
)

// The subscription registry: which clients hold which of the pod's ports, in which mode, and
// whether a new subscription may share a port with those it finds there.

// subscription is one client's hold on a pod port.
type subscription struct {
	client *quic.Conn
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

// subscribe sends the pod's new connections on port to client: all of them (steal), or a copy
// of each (mirror).
func (in *incoming) subscribe(ctx context.Context, client *quic.Conn, req wire.Subscribe) error {
	port, mode := req.Port, req.Mode
	if mode != wire.ModeSteal && mode != wire.ModeMirror {
		return fmt.Errorf("subscription mode %q: %w", mode, syscall.EOPNOTSUPP)
	}
	filter, err := requestFilter(req)
	if err != nil {
		return err
	}
	want := subscription{client: client, mode: mode, filter: filter, header: req.Header, path: req.Path}
	if req.Filter != nil {
		want.tree = httpfilter.Format(*req.Filter)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if subs := in.subs[port]; len(subs) > 0 {
		if err := sharable(port, subs, want); err != nil {
			return err
		}
		if slices.ContainsFunc(subs, func(s subscription) bool { return s.client == client }) {
			return nil // the same subscription again
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
	if err := in.redirect(ctx, port); err != nil {
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
			list = append(list, wire.SubscriptionInfo{
				Port:    port,
				Mode:    s.mode,
				Header:  s.header,
				Path:    s.path,
				Client:  s.client.RemoteAddr().String(),
				Mine:    s.client == client,
				Capture: s.capture != nil,
			})
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
		case s.client == want.client && (s.mode != want.mode || !s.sameFilter(want)):
			return fmt.Errorf("port %d is already subscribed by this session to %s: %w", port, s.describe(), syscall.EADDRINUSE)
		case s.client == want.client:
		case s.filter == nil || want.filter == nil:
			return fmt.Errorf("port %d is already subscribed by another session (%s): %w", port, s.describe(), syscall.EADDRINUSE)
		case s.sameFilter(want):
			return fmt.Errorf("port %d is already subscribed by another session for the same requests (%s): %w", port, s.describe(), syscall.EADDRINUSE)
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
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.drop(client, port)
}

// dropClient ends every subscription of a client that went away (closed, or silent for the QUIC
// idle timeout).
func (in *incoming) dropClient(client *quic.Conn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for port := range in.subs {
		if err := in.drop(client, port); err != nil {
			in.log.Error("remove redirect", "port", port, "err", err)
		}
	}
}

// drop ends client's subscription of port, and the port's redirect with its last
// subscription. Called with mu held.
func (in *incoming) drop(client *quic.Conn, port uint16) error {
	subs := in.subs[port]
	kept := slices.DeleteFunc(slices.Clone(subs), func(s subscription) bool { return s.client == client })
	switch {
	case len(kept) == len(subs):
		return nil
	case len(kept) > 0:
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
