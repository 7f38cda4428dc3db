package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Bounds of a SessionsReply: a sidecar serves 16 clients at once, and the sidecars of one pod
// are few; a session holds at most 64 ports, a few filtered steals each.
const (
	maxListedSessions  = 256
	maxSessionPorts    = 1024
	maxSidecarNameLen  = 64 // a container name is a DNS label, at most 63 bytes
	sessionInfoMinSize = 1 + 1 + 8 + 1 + 1 + 1
	sessionPortMinSize = 2 + 1 + 1 + 1 + 1
)

// Sessions asks the sidecar for the sessions it serves (control stream, FeatureSessions):
// who uses it, since when, and which of the pod's ports each holds. Sessions that only look
// (FeatureInspect) are not listed. The answer is a SessionsReply, or an Error.
type Sessions struct{}

// Type implements Message.
func (Sessions) Type() Type { return TypeSessions }

func (Sessions) check() error { return nil }

func (Sessions) appendPayload(b []byte) []byte { return b }

func parseSessions([]byte) (Sessions, int, error) { return Sessions{}, 0, nil }

// SessionInfo is one session as the listings show it.
type SessionInfo struct {
	// Sidecar is the container name of the sidecar that serves the session.
	Sidecar string
	// Label names the session's user (SessionLabel); "" for a plugin older than labels.
	Label string
	// Since is when the session connected, by the sidecar's clock, to the millisecond; the
	// zero Time when unknown.
	Since time.Time
	// Client is the session's connection as the sidecar sees it.
	Client string
	// Mine: the connection that asked is this session.
	Mine bool
	// Ports are the pod ports the session holds, by port and then in the order taken.
	Ports []SessionPort
}

// SessionPort is one hold of a session on a pod port, as Subscribe asked for it.
type SessionPort struct {
	Port   uint16
	Mode   string // ModeSteal or ModeMirror
	Header string // the HTTP filter, when the steal takes only some requests
	Path   string
	// Capture: a mirror by packet capture; otherwise the port is redirected (nftables).
	Capture bool
}

// SessionsReply lists the sessions, oldest first. Its texts (sidecar, label, mode) are
// printable: a listing goes to terminals as it is.
type SessionsReply struct {
	Sessions []SessionInfo
}

// Type implements Message.
func (SessionsReply) Type() Type { return TypeSessionsReply }

func (r SessionsReply) check() error {
	if len(r.Sessions) > maxListedSessions {
		return fmt.Errorf("%w: sessions: %d, max %d", ErrTooLarge, len(r.Sessions), maxListedSessions)
	}
	for _, s := range r.Sessions {
		if err := errors.Join(
			checkText(s.Sidecar, maxSidecarNameLen, "session sidecar"),
			checkText(s.Label, MaxLabelLen, "session label"),
			checkString(s.Client, maxAddressLen, "session client")); err != nil {
			return err
		}
		if len(s.Ports) > maxSessionPorts {
			return fmt.Errorf("%w: ports of a session: %d, max %d", ErrTooLarge, len(s.Ports), maxSessionPorts)
		}
		for _, p := range s.Ports {
			if err := errors.Join(
				checkText(p.Mode, maxModeLen, "session port mode"),
				checkString(p.Header, MaxFilterLen, "session port header filter"),
				checkString(p.Path, MaxFilterLen, "session port path filter")); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r SessionsReply) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Sessions)))
	for _, s := range r.Sessions {
		b = appendString(b, s.Sidecar)
		b = appendString(b, s.Label)
		b = binary.BigEndian.AppendUint64(b, uint64(unixMilli(s.Since)))
		b = appendString(b, s.Client)
		b = appendBool(b, s.Mine)
		b = binary.AppendUvarint(b, uint64(len(s.Ports)))
		for _, p := range s.Ports {
			b = binary.BigEndian.AppendUint16(b, p.Port)
			b = appendString(b, p.Mode)
			b = appendString(b, p.Header)
			b = appendString(b, p.Path)
			b = appendBool(b, p.Capture)
		}
	}
	return b
}

// unixMilli is t in milliseconds since the epoch, 0 for the zero Time; timeOfUnixMilli is its
// inverse, so that every time has one encoding.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOfUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// parseSessionsReply checks each count against its bound and the bytes left before
// allocating, as parseStrings does.
func parseSessionsReply(b []byte) (SessionsReply, int, error) {
	count, n, err := parseCount(b, maxListedSessions, sessionInfoMinSize, "sessions")
	if err != nil {
		return SessionsReply{}, 0, err
	}
	var r SessionsReply
	for range count {
		s, m, err := parseSessionInfo(b[n:])
		if err != nil {
			return SessionsReply{}, 0, err
		}
		r.Sessions, n = append(r.Sessions, s), n+m
	}
	return r, n, nil
}

func parseSessionInfo(b []byte) (SessionInfo, int, error) {
	var s SessionInfo
	var n int
	for _, field := range []struct {
		to   *string
		max  int
		what string
	}{
		{&s.Sidecar, maxSidecarNameLen, "session sidecar"},
		{&s.Label, MaxLabelLen, "session label"},
	} {
		v, m, err := parseText(b[n:], field.max, field.what)
		if err != nil {
			return SessionInfo{}, 0, err
		}
		*field.to, n = v, n+m
	}
	since, m, err := parseUint64(b[n:], "session since")
	if err != nil {
		return SessionInfo{}, 0, err
	}
	s.Since, n = timeOfUnixMilli(int64(since)), n+m
	if s.Client, m, err = parseString(b[n:], maxAddressLen, "session client"); err != nil {
		return SessionInfo{}, 0, err
	}
	n += m
	if s.Mine, m, err = parseBool(b[n:], "session mine"); err != nil {
		return SessionInfo{}, 0, err
	}
	n += m
	ports, m, err := parseCount(b[n:], maxSessionPorts, sessionPortMinSize, "session ports")
	if err != nil {
		return SessionInfo{}, 0, err
	}
	n += m
	for range ports {
		p, m, err := parseSessionPort(b[n:])
		if err != nil {
			return SessionInfo{}, 0, err
		}
		s.Ports, n = append(s.Ports, p), n+m
	}
	return s, n, nil
}

func parseSessionPort(b []byte) (SessionPort, int, error) {
	var p SessionPort
	port, n, err := parseUint16(b, "session port")
	if err != nil {
		return SessionPort{}, 0, err
	}
	p.Port = port
	mode, m, err := parseText(b[n:], maxModeLen, "session port mode")
	if err != nil {
		return SessionPort{}, 0, err
	}
	p.Mode, n = mode, n+m
	for _, field := range []struct {
		to   *string
		what string
	}{{&p.Header, "session port header filter"}, {&p.Path, "session port path filter"}} {
		v, m, err := parseString(b[n:], MaxFilterLen, field.what)
		if err != nil {
			return SessionPort{}, 0, err
		}
		*field.to, n = v, n+m
	}
	if p.Capture, m, err = parseBool(b[n:], "session port capture"); err != nil {
		return SessionPort{}, 0, err
	}
	return p, n + m, nil
}
