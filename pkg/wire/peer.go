package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The sidecars of one pod speak these to each other, on the abstract Unix sockets of the pod's
// network namespace (see the sidecar's peers.go): one sidecar redirects a port and routes its
// HTTP requests for the sessions of every sidecar that shares the port by filter.

// PeerJoin asks the sidecar that redirects Subscribe.Port to route, from now on, the
// requests that Subscribe's filter matches to the sender, a sidecar of the same pod. The answer
// is a SubscribeReply; a refusal names the session that holds the port. Accepted, the
// connection stays open for as long as the share lasts: either side closing it ends it.
type PeerJoin struct {
	Subscribe Subscribe
	// Sidecar names the sender (its container name): its peer socket, where the router
	// delivers the requests.
	Sidecar string
	// Label is the user label of the session that subscribed, for refusals and listings
	// (CheckLabel).
	Label string
	// SinceUnixNano is when the session first subscribed the port. Among overlapping
	// filters the earliest takes a request, whichever sidecar routes the port now.
	SinceUnixNano int64
	// Token is what each PeerDeliver of this share carries: anyone in the pod may connect to
	// the sender's peer socket, but only the router learned the token.
	Token PeerToken
}

// Type implements Message.
func (PeerJoin) Type() Type { return TypePeerJoin }

func (j PeerJoin) check() error {
	return errors.Join(
		j.Subscribe.check(),
		checkText(j.Sidecar, maxSidecarNameLen, "peer join sidecar"),
		CheckLabel(j.Label))
}

// appendPayload writes the Subscribe last: its filter tree, when it has one, runs to the end
// of the payload.
func (j PeerJoin) appendPayload(b []byte) []byte {
	b = appendString(b, j.Sidecar)
	b = appendString(b, j.Label)
	b = binary.BigEndian.AppendUint64(b, uint64(j.SinceUnixNano))
	b = append(b, j.Token[:]...)
	return j.Subscribe.appendPayload(b)
}

func parsePeerJoin(b []byte) (PeerJoin, int, error) {
	var j PeerJoin
	sidecar, n, err := parseText(b, maxSidecarNameLen, "peer join sidecar")
	if err != nil {
		return PeerJoin{}, 0, err
	}
	label, m, err := parseLabel(b[n:], "peer join label")
	if err != nil {
		return PeerJoin{}, 0, err
	}
	j.Sidecar, j.Label, n = sidecar, label, n+m
	since, m, err := parseUint64(b[n:], "peer join since")
	if err != nil {
		return PeerJoin{}, 0, err
	}
	j.SinceUnixNano, n = int64(since), n+m
	token, m, err := parsePeerToken(b[n:], "peer join token")
	if err != nil {
		return PeerJoin{}, 0, err
	}
	j.Token, n = token, n+m
	sub, m, err := parseSubscribe(b[n:])
	if err != nil {
		return PeerJoin{}, 0, fmt.Errorf("peer join: %w", err)
	}
	j.Subscribe = sub
	return j, n + m, nil
}

// PeerDeliver is the first message on a connection the router makes to a joined sidecar's
// peer socket: a connection that arrived on Incoming.Port, with requests for the share that
// Token names. The connection then carries the requests and their responses as they are.
// There is no answer: a sidecar that does not know the token closes the connection.
type PeerDeliver struct {
	Token    PeerToken
	Incoming Incoming
}

// Type implements Message.
func (PeerDeliver) Type() Type { return TypePeerDeliver }

func (d PeerDeliver) check() error { return d.Incoming.check() }

func (d PeerDeliver) appendPayload(b []byte) []byte {
	b = append(b, d.Token[:]...)
	return d.Incoming.appendPayload(b)
}

func parsePeerDeliver(b []byte) (PeerDeliver, int, error) {
	token, n, err := parsePeerToken(b, "peer deliver token")
	if err != nil {
		return PeerDeliver{}, 0, err
	}
	in, m, err := parseIncoming(b[n:])
	if err != nil {
		return PeerDeliver{}, 0, fmt.Errorf("peer deliver: %w", err)
	}
	return PeerDeliver{Token: token, Incoming: in}, n + m, nil
}

// PeerToken is a share's secret: random bytes that String never shows.
type PeerToken [16]byte

// NewPeerToken returns a token of random bytes.
func NewPeerToken() (PeerToken, error) {
	t, err := NewLaneTicket()
	return PeerToken(t), err
}

// String names the token by a digest, as LaneTicket.String does.
func (t PeerToken) String() string { return "token-" + secretDigest(t[:]) }

// GoString hides the token from %#v as String does from %v.
func (t PeerToken) GoString() string { return "wire.PeerToken(" + t.String() + ")" }

func parsePeerToken(b []byte, field string) (PeerToken, int, error) {
	t, n, err := parseLaneTicket(b, field)
	return PeerToken(t), n, err
}

// MaxHandOverBuffered bounds the bytes that follow a PeerHandOver: a request head (64 KiB at
// most) and what its reader had read ahead of it.
const MaxHandOverBuffered = 128 << 10

// maxHandOverBefore bounds the shares a PeerHandOver names as subscribed before the
// receiver's: a port has at most 64 of other sidecars' sessions, and a few of the router's.
const maxHandOverBefore = 128

// PeerHandOver is the first message on a connection the router makes to a joined sidecar's
// peer socket to give it a client connection whose next request is for the share Token names,
// so that the connection's requests no longer pass through the router. The client connection
// itself travels with the message's first byte (SCM_RIGHTS), and Buffered bytes follow the
// message: what the router read from it and did not relay, that request first.
//
// The receiver answers with a SubscribeReply once it has taken the connection (or refused it:
// then the router serves the connection itself), and serves its requests from then on: those
// of its share, unless one of Before (the port's shares subscribed earlier, whose filters come
// first) matches too, go to its client; the others go back to the router on a PeerRoute
// connection that carries Route. The socket stays open while the receiver serves the
// connection; the router closes it when the port's shares change, which ends the connection.
type PeerHandOver struct {
	Token    PeerToken
	Incoming Incoming
	// Route names this hand-over in the receiver's PeerRoutes: a secret of its own, so
	// that a route back can only be for a connection the router handed over, whose client
	// and destination the router knows.
	Route    PeerToken
	Buffered uint32
	Before   []Subscribe
}

// Type implements Message.
func (PeerHandOver) Type() Type { return TypePeerHandOver }

func (h PeerHandOver) check() error {
	errs := []error{h.Incoming.check()}
	if h.Buffered > MaxHandOverBuffered {
		errs = append(errs, fmt.Errorf("%w: peer hand-over buffered: %d bytes, max %d", ErrTooLarge, h.Buffered, MaxHandOverBuffered))
	}
	if len(h.Before) > maxHandOverBefore {
		errs = append(errs, fmt.Errorf("%w: peer hand-over shares before: %d, max %d", ErrTooLarge, len(h.Before), maxHandOverBefore))
	}
	for _, s := range h.Before {
		errs = append(errs, s.check())
	}
	return errors.Join(errs...)
}

// appendPayload writes each of Before with its length: a Subscribe's filter tree runs to the
// end of what holds it.
func (h PeerHandOver) appendPayload(b []byte) []byte {
	b = append(b, h.Token[:]...)
	b = h.Incoming.appendPayload(b)
	b = append(b, h.Route[:]...)
	b = binary.BigEndian.AppendUint32(b, h.Buffered)
	b = binary.AppendUvarint(b, uint64(len(h.Before)))
	for _, s := range h.Before {
		b = appendString(b, string(s.appendPayload(nil)))
	}
	return b
}

func parsePeerHandOver(b []byte) (PeerHandOver, int, error) {
	var h PeerHandOver
	token, n, err := parsePeerToken(b, "peer hand-over token")
	if err != nil {
		return PeerHandOver{}, 0, err
	}
	h.Token = token
	in, m, err := parseIncoming(b[n:])
	if err != nil {
		return PeerHandOver{}, 0, fmt.Errorf("peer hand-over: %w", err)
	}
	h.Incoming, n = in, n+m
	route, m, err := parsePeerToken(b[n:], "peer hand-over route")
	if err != nil {
		return PeerHandOver{}, 0, err
	}
	h.Route, n = route, n+m
	buffered, m, err := parseUint32(b[n:], "peer hand-over buffered")
	if err != nil {
		return PeerHandOver{}, 0, err
	}
	if buffered > MaxHandOverBuffered {
		return PeerHandOver{}, 0, fmt.Errorf("%w: peer hand-over buffered: %d bytes, max %d", ErrTooLarge, buffered, MaxHandOverBuffered)
	}
	h.Buffered, n = buffered, n+m
	// Each share takes at least its length's byte: parseStrings checks the count against the
	// bytes left before allocating.
	before, m, err := parseStrings(b[n:], maxHandOverBefore, MaxFrameSize, "peer hand-over shares before")
	if err != nil {
		return PeerHandOver{}, 0, err
	}
	n += m
	for _, raw := range before {
		s, err := exactSubscribe([]byte(raw))
		if err != nil {
			return PeerHandOver{}, 0, fmt.Errorf("peer hand-over share before: %w", err)
		}
		h.Before = append(h.Before, s)
	}
	return h, n, nil
}

// exactSubscribe decodes a Subscribe that must take all of b.
func exactSubscribe(b []byte) (Subscribe, error) {
	s, n, err := parseSubscribe(b)
	if err != nil {
		return Subscribe{}, err
	}
	if n != len(b) {
		return Subscribe{}, fmt.Errorf("%w: %d bytes after the subscription", ErrMalformed, len(b)-n)
	}
	return s, nil
}

// PeerRoute is the first message on a connection a sidecar makes to the router's peer socket
// for a client connection the router handed over to it, to send back the requests that are
// not its share's: Route is the PeerHandOver's, and the router routes the requests as if they
// had arrived on that client connection. The connection then carries them and their responses
// as they are. A router that does not know Route (the hand-over ended) closes the connection.
type PeerRoute struct {
	Route PeerToken
}

// Type implements Message.
func (PeerRoute) Type() Type { return TypePeerRoute }

func (PeerRoute) check() error { return nil }

func (r PeerRoute) appendPayload(b []byte) []byte { return append(b, r.Route[:]...) }

func parsePeerRoute(b []byte) (PeerRoute, int, error) {
	route, n, err := parsePeerToken(b, "peer route")
	return PeerRoute{Route: route}, n, err
}
