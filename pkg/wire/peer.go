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
