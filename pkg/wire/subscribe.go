package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Subscription modes.
const (
	// ModeSteal: new connections to the port go to the client instead of the pod's app.
	ModeSteal = "steal"
	// ModeMirror: new connections to the port still go to the pod's app, and the client gets a
	// copy of what each connection's client sends.
	ModeMirror = "mirror"
)

// Bounds of a subscription's strings.
const (
	maxModeLen = 16
	// MaxFilterLen bounds each filter a subscription carries: Header, Path, and each leaf of
	// Filter.
	MaxFilterLen = 1024
)

// Subscribe asks the sidecar to send the pod's new connections on Port to this client (control
// stream). The answer is a SubscribeReply. A steal with a filter takes only the HTTP requests
// that match all of its parts that are set: Header ("Name: regex"), Path (a regex) and Filter.
//
// Filter comes last and only when set, so that a Subscribe without it is encoded as before
// FeatureHTTPFilterTree: a client sends it only to a sidecar that offers that feature, and a
// filter that Header and Path can say goes in those, which every sidecar reads.
type Subscribe struct {
	Port   uint16
	Mode   string
	Header string
	Path   string
	Filter *HTTPFilter
}

// Type implements Message.
func (Subscribe) Type() Type { return TypeSubscribe }

func (s Subscribe) check() error {
	return errors.Join(
		checkString(s.Mode, maxModeLen, "subscribe mode"),
		checkString(s.Header, MaxFilterLen, "subscribe header filter"),
		checkString(s.Path, MaxFilterLen, "subscribe path filter"),
		s.checkFilter())
}

func (s Subscribe) checkFilter() error {
	if s.Filter == nil {
		return nil
	}
	return s.Filter.check()
}

func (s Subscribe) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, s.Port)
	b = appendString(b, s.Mode)
	b = appendString(b, s.Header)
	b = appendString(b, s.Path)
	if s.Filter != nil {
		b = appendHTTPFilter(b, *s.Filter)
	}
	return b
}

func parseSubscribe(b []byte) (Subscribe, int, error) {
	var s Subscribe
	port, n, err := parseUint16(b, "subscribe port")
	if err != nil {
		return Subscribe{}, 0, err
	}
	s.Port = port
	for _, field := range []struct {
		to   *string
		max  int
		what string
	}{
		{&s.Mode, maxModeLen, "subscribe mode"},
		{&s.Header, MaxFilterLen, "subscribe header filter"},
		{&s.Path, MaxFilterLen, "subscribe path filter"},
	} {
		v, m, err := parseString(b[n:], field.max, field.what)
		if err != nil {
			return Subscribe{}, 0, err
		}
		*field.to, n = v, n+m
	}
	if n == len(b) {
		return s, n, nil
	}
	f, m, err := parseHTTPFilter(b[n:])
	if err != nil {
		return Subscribe{}, 0, fmt.Errorf("subscribe: %w", err)
	}
	s.Filter = &f
	return s, n + m, nil
}

// Unsubscribe ends this client's subscription of Port (control stream); the answer is a
// SubscribeReply.
type Unsubscribe struct {
	Port uint16
}

// Type implements Message.
func (Unsubscribe) Type() Type { return TypeUnsubscribe }

func (Unsubscribe) check() error { return nil }

func (u Unsubscribe) appendPayload(b []byte) []byte { return binary.BigEndian.AppendUint16(b, u.Port) }

func parseUnsubscribe(b []byte) (Unsubscribe, int, error) {
	port, n, err := parseUint16(b, "unsubscribe port")
	if err != nil {
		return Unsubscribe{}, 0, err
	}
	return Unsubscribe{Port: port}, n, nil
}

// SubscribeReply answers Subscribe and Unsubscribe: Errno 0, or why the sidecar cannot (EPERM
// without NET_ADMIN, EADDRINUSE when another session steals the port).
type SubscribeReply struct {
	Errno  uint32
	Reason string
}

// Type implements Message.
func (SubscribeReply) Type() Type { return TypeSubscribeReply }

func (SubscribeReply) check() error { return nil }

func (r SubscribeReply) appendPayload(b []byte) []byte {
	return appendDialReply(b, DialReply(r))
}

func parseSubscribeReply(b []byte) (SubscribeReply, int, error) {
	r, n, err := parseDialReply(b)
	return SubscribeReply(r), n, err
}

// Err returns the refusal as a syscall error (errors.Is with syscall.EPERM works), or nil.
func (r SubscribeReply) Err() error {
	if r.Errno == 0 {
		return nil
	}
	return DialReply(r).Err()
}

// Incoming is the first message on a stream the sidecar opens: a connection that reached the
// pod on Port from Remote, whose bytes the stream then carries.
type Incoming struct {
	Port   uint16
	Remote string // host:port of the connection's client, as the pod saw it
}

// Type implements Message.
func (Incoming) Type() Type { return TypeIncoming }

func (i Incoming) check() error { return checkString(i.Remote, maxAddressLen, "incoming remote") }

func (i Incoming) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, i.Port)
	return appendString(b, i.Remote)
}

func parseIncoming(b []byte) (Incoming, int, error) {
	port, n, err := parseUint16(b, "incoming port")
	if err != nil {
		return Incoming{}, 0, err
	}
	remote, m, err := parseString(b[n:], maxAddressLen, "incoming remote")
	if err != nil {
		return Incoming{}, 0, fmt.Errorf("incoming: %w", err)
	}
	return Incoming{Port: port, Remote: remote}, n + m, nil
}
