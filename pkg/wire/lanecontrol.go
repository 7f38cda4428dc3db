package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxLaneAcks bounds the acknowledgements of one LaneAcks; at 16 bytes each they fill a quarter
// of a frame.
const MaxLaneAcks = 1024

// laneAckLen is a LaneAck's fixed encoding.
const laneAckLen = 8 + 8

// LaneControl is the first message of a session's lanes stream, a QUIC stream the client opens
// once per session to manage its lanes: tickets (LaneTickets), acknowledgements (LaneAcks),
// ends (LaneEnd) and breaks (LaneBroken) travel on it, beside the lanes' own connections.
type LaneControl struct{}

// Type implements Message.
func (LaneControl) Type() Type { return TypeLaneControl }

func (LaneControl) check() error { return nil }

func (LaneControl) appendPayload(b []byte) []byte { return b }

func parseLaneControl([]byte) (LaneControl, int, error) { return LaneControl{}, 0, nil }

// LaneAck says that Received bytes of Lane, counted from its start, have arrived.
type LaneAck struct {
	Lane     uint64
	Received uint64
}

// LaneAcks acknowledges lanes' bytes (either side, lanes stream), so that the other side can
// free what it kept to resend them. The counts are cumulative; where a resend starts comes from
// the re-attach handshake (LaneOpen, LaneReply), not from these.
type LaneAcks struct {
	Acks []LaneAck
}

// Type implements Message.
func (LaneAcks) Type() Type { return TypeLaneAcks }

func (a LaneAcks) check() error {
	if len(a.Acks) > MaxLaneAcks {
		return fmt.Errorf("%w: lane acks: %d, max %d", ErrTooLarge, len(a.Acks), MaxLaneAcks)
	}
	return nil
}

func (a LaneAcks) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(a.Acks)))
	for _, ack := range a.Acks {
		b = appendLanePosition(b, ack.Lane, ack.Received)
	}
	return b
}

// parseLaneAcks checks the count against its bound and the bytes left before allocating, as
// parseStrings does. An empty list decodes as nil.
func parseLaneAcks(b []byte) (LaneAcks, int, error) {
	count, n, err := parseCount(b, MaxLaneAcks, laneAckLen, "lane acks")
	if err != nil {
		return LaneAcks{}, 0, err
	}
	var a LaneAcks
	if count > 0 {
		a.Acks = make([]LaneAck, count)
	}
	for i := range a.Acks {
		lane, received, m, err := parseLanePosition(b[n:], "lane ack")
		if err != nil {
			return LaneAcks{}, 0, err
		}
		a.Acks[i], n = LaneAck{Lane: lane, Received: received}, n+m
	}
	return a, n, nil
}

// LaneEnd ends the sender's direction of Lane after Sent bytes, as a FIN would (either side,
// lanes stream). With Reset it aborts the lane both ways instead. A lane's connection that ends
// without a LaneEnd broke, and is re-attached.
type LaneEnd struct {
	Lane  uint64
	Sent  uint64
	Reset bool
}

// Type implements Message.
func (LaneEnd) Type() Type { return TypeLaneEnd }

func (LaneEnd) check() error { return nil }

func (e LaneEnd) appendPayload(b []byte) []byte {
	b = appendLanePosition(b, e.Lane, e.Sent)
	return appendBool(b, e.Reset)
}

func parseLaneEnd(b []byte) (LaneEnd, int, error) {
	lane, sent, n, err := parseLanePosition(b, "lane end")
	if err != nil {
		return LaneEnd{}, 0, err
	}
	reset, m, err := parseBool(b[n:], "lane end reset")
	if err != nil {
		return LaneEnd{}, 0, err
	}
	return LaneEnd{Lane: lane, Sent: sent, Reset: reset}, n + m, nil
}

// LaneBroken tells the client that the sidecar's end of Lane's connection broke (sidecar, lanes
// stream), so that the client re-attaches the lane on a new connection, which it may not have
// noticed it needs: a connection can die on one side only.
type LaneBroken struct {
	Lane uint64
}

// Type implements Message.
func (LaneBroken) Type() Type { return TypeLaneBroken }

func (LaneBroken) check() error { return nil }

func (l LaneBroken) appendPayload(b []byte) []byte { return binary.BigEndian.AppendUint64(b, l.Lane) }

func parseLaneBroken(b []byte) (LaneBroken, int, error) {
	lane, n, err := parseUint64(b, "lane broken lane")
	return LaneBroken{Lane: lane}, n, err
}

// LaneFree tells the client that the sidecar is done with Lane's connection (sidecar, lanes
// stream, FeatureLaneReuse): the lane ended cleanly both ways, nothing of it is left to read or
// write, and the sidecar now waits on that connection for a LaneOpen of another lane. The
// client's own end may not know yet that the lane ended, so it sends that LaneOpen only once
// this has come: before, a read of the old lane in the sidecar could take it for data.
type LaneFree struct {
	Lane uint64
}

// Type implements Message.
func (LaneFree) Type() Type { return TypeLaneFree }

func (LaneFree) check() error { return nil }

func (l LaneFree) appendPayload(b []byte) []byte { return binary.BigEndian.AppendUint64(b, l.Lane) }

func parseLaneFree(b []byte) (LaneFree, int, error) {
	lane, n, err := parseUint64(b, "lane free lane")
	return LaneFree{Lane: lane}, n, err
}
