package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// LaneKind says which way a lane's connection goes. Values are on the wire: append only, never
// renumber.
type LaneKind uint8

// The lane kinds.
const (
	// LaneOutgoing: after LaneReply the client writes Dial on the lane and the sidecar answers
	// DialReply, as on a data stream; then the lane carries the connection's raw bytes.
	LaneOutgoing LaneKind = iota
	// LaneIncoming: the sidecar keeps the lane in a pool, and when a stolen or mirrored
	// connection reaches the pod writes Incoming on it; then the lane carries its raw bytes.
	LaneIncoming
)

func (k LaneKind) String() string {
	switch k {
	case LaneOutgoing:
		return "outgoing"
	case LaneIncoming:
		return "incoming"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

func (k LaneKind) check() error {
	if k > LaneIncoming {
		return fmt.Errorf("%w: unknown lane kind %d", ErrMalformed, uint8(k))
	}
	return nil
}

// LaneOpen is the first message on a lane connection (client, after the magic that says it is
// a lane), spending a fresh Ticket. Lane 0 asks for a new lane of Kind; any other Lane
// re-attaches that lane after its connection broke, and Received is how many of the lane's
// bytes the client has received, so that the sidecar resends from there. The sidecar answers
// LaneReply, or closes the connection without a word when it refuses.
type LaneOpen struct {
	Ticket   LaneTicket
	Lane     uint64
	Kind     LaneKind
	Received uint64
}

// Type implements Message.
func (LaneOpen) Type() Type { return TypeLaneOpen }

func (o LaneOpen) check() error { return o.Kind.check() }

func (o LaneOpen) appendPayload(b []byte) []byte {
	b = appendLaneTicket(b, o.Ticket)
	b = binary.BigEndian.AppendUint64(b, o.Lane)
	b = append(b, byte(o.Kind))
	return binary.BigEndian.AppendUint64(b, o.Received)
}

func parseLaneOpen(b []byte) (LaneOpen, int, error) {
	ticket, n, err := parseLaneTicket(b, "lane open ticket")
	if err != nil {
		return LaneOpen{}, 0, err
	}
	lane, m, err := parseUint64(b[n:], "lane open lane")
	if err != nil {
		return LaneOpen{}, 0, err
	}
	n += m
	kind, m, err := parseUint8(b[n:], "lane open kind")
	if err != nil {
		return LaneOpen{}, 0, err
	}
	if err := LaneKind(kind).check(); err != nil {
		return LaneOpen{}, 0, err
	}
	n += m
	received, m, err := parseUint64(b[n:], "lane open received")
	if err != nil {
		return LaneOpen{}, 0, err
	}
	return LaneOpen{Ticket: ticket, Lane: lane, Kind: LaneKind(kind), Received: received}, n + m, nil
}

// LaneReply accepts a LaneOpen (sidecar, on the lane). Lane is the lane's ID, new or the one
// re-attached (never 0); Received is how many of the lane's bytes the sidecar has received, so
// that the client resends from there (0 for a new lane).
type LaneReply struct {
	Lane     uint64
	Received uint64
}

// Type implements Message.
func (LaneReply) Type() Type { return TypeLaneReply }

func (LaneReply) check() error { return nil }

func (r LaneReply) appendPayload(b []byte) []byte { return appendLanePosition(b, r.Lane, r.Received) }

func parseLaneReply(b []byte) (LaneReply, int, error) {
	lane, received, n, err := parseLanePosition(b, "lane reply")
	return LaneReply{Lane: lane, Received: received}, n, err
}

// appendLanePosition appends a lane ID and a byte count, the pair that LaneReply and LaneAck
// (and LaneEnd before its flag) carry.
func appendLanePosition(b []byte, lane, count uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, lane)
	return binary.BigEndian.AppendUint64(b, count)
}

func parseLanePosition(b []byte, field string) (lane, count uint64, n int, err error) {
	if len(b) < 16 {
		return 0, 0, 0, fmt.Errorf("%w: %s: need 16 bytes, have %d", ErrMalformed, field, len(b))
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), 16, nil
}
