package sidecar

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The sessions a sidecar serves, for the listing (wire.Sessions): who uses it (the label each
// client sends after its hello), since when, and which of the pod's ports each holds.

// session is one client connection that said hello.
type session struct {
	since time.Time
	label string
	// inspect: the client only looks (ls, clean); such sessions are not listed.
	inspect bool
	// features are those the hello negotiated.
	features []string
}

// sessions holds the sessions of the connected clients.
type sessions struct {
	mu     sync.Mutex
	byConn map[*quic.Conn]*session
}

func newSessions() *sessions {
	return &sessions{byConn: map[*quic.Conn]*session{}}
}

// open records conn's hello at now. A second control stream of the same connection is the
// same session: it keeps its start and its label.
func (ss *sessions) open(conn *quic.Conn, now time.Time, inspect bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byConn[conn]; ok {
		s.inspect = inspect
		return
	}
	ss.byConn[conn] = &session{since: now, inspect: inspect}
}

// label names the user of conn's session; the wire checked that it prints.
func (ss *sessions) label(conn *quic.Conn, label string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byConn[conn]; ok {
		s.label = label
	}
}

// labelOf is the label of conn's session, or "".
func (ss *sessions) labelOf(conn *quic.Conn) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byConn[conn]; ok {
		return s.label
	}
	return ""
}

// negotiated records the features conn's hello negotiated, before the reply goes out: the
// client's other streams follow the reply.
func (ss *sessions) negotiated(conn *quic.Conn, features []string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byConn[conn]; ok {
		s.features = features
	}
}

// has tells whether conn's hello negotiated feature.
func (ss *sessions) has(conn *quic.Conn, feature string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byConn[conn]
	return ok && slices.Contains(s.features, feature)
}

// close forgets conn's session, when its connection ends.
func (ss *sessions) close(conn *quic.Conn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byConn, conn)
}

// listedSession is a session as the listing takes it.
type listedSession struct {
	conn *quic.Conn
	session
}

// list returns the sessions that do more than look, oldest first (by label for the same
// start, so that the order is stable).
func (ss *sessions) list() []listedSession {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var list []listedSession
	for conn, s := range ss.byConn {
		if !s.inspect {
			list = append(list, listedSession{conn: conn, session: *s})
		}
	}
	slices.SortFunc(list, func(a, b listedSession) int {
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.label, b.label), cmp.Compare(a.conn.RemoteAddr().String(), b.conn.RemoteAddr().String()))
	})
	return list
}

// listSessions answers a Sessions request from asker: each session this sidecar serves, with
// the ports it holds, then those of the pod's other sidecars (peers.go), which every user of
// the pod may see. A list too long for one frame (far beyond a real pod's) is an Error, not a
// broken control stream.
func (s *server) listSessions(ctx context.Context, asker *quic.Conn) wire.Message {
	reply := s.ownSessions(asker)
	reply.Sessions = append(reply.Sessions, otherSidecarsSessions(ctx, s.log, s.cfg.Name)...)
	if _, err := wire.AppendMessage(nil, reply); err != nil {
		return wire.ErrorOf(err)
	}
	return reply
}

// ownSessions lists the sessions of this sidecar; Mine marks asker's, if any.
func (s *server) ownSessions(asker *quic.Conn) wire.SessionsReply {
	var reply wire.SessionsReply
	for _, ls := range s.sessions.list() {
		info := wire.SessionInfo{
			Sidecar: s.cfg.Name,
			Label:   ls.label,
			Since:   ls.since,
			Client:  ls.conn.RemoteAddr().String(),
			Mine:    asker != nil && ls.conn == asker,
		}
		for _, sub := range s.in.list(ls.conn) {
			if sub.Mine {
				info.Ports = append(info.Ports, wire.SessionPort{Port: sub.Port, Mode: sub.Mode, Header: sub.Header, Path: sub.Path, Capture: sub.Capture})
			}
		}
		reply.Sessions = append(reply.Sessions, info)
	}
	return reply
}
