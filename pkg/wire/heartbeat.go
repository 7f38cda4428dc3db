package wire

import "encoding/binary"

// Heartbeat proves the control stream alive end to end; the sidecar echoes it, so the sender
// can match answers to requests by Seq and measure the round trip.
type Heartbeat struct{ Seq uint64 }

// Type implements Message.
func (Heartbeat) Type() Type { return TypeHeartbeat }

func (Heartbeat) check() error { return nil }

func (h Heartbeat) appendPayload(b []byte) []byte { return appendHeartbeat(b, h) }

func appendHeartbeat(b []byte, h Heartbeat) []byte { return binary.BigEndian.AppendUint64(b, h.Seq) }

func parseHeartbeat(b []byte) (Heartbeat, int, error) {
	seq, n, err := parseUint64(b, "heartbeat seq")
	if err != nil {
		return Heartbeat{}, 0, err
	}
	return Heartbeat{Seq: seq}, n, nil
}
