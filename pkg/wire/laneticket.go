package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// MaxLaneTickets bounds a LaneTickets request and the tickets of one LaneTicketsReply.
const MaxLaneTickets = 256

// LaneTicket authorizes one LaneOpen. The sidecar issues tickets on a session's lanes stream,
// binds each to that QUIC connection, and takes each once and only for a few seconds: whoever
// holds one can attach a lane to the session, so it is a secret, and String never shows it.
type LaneTicket [16]byte

// laneTicketLen is a LaneTicket's encoding: its bytes as they are.
const laneTicketLen = len(LaneTicket{})

// NewLaneTicket returns a ticket of random bytes.
func NewLaneTicket() (LaneTicket, error) {
	var t LaneTicket
	if _, err := rand.Read(t[:]); err != nil {
		return LaneTicket{}, fmt.Errorf("new lane ticket: %w", err)
	}
	return t, nil
}

// String names the ticket in logs by a digest: two lines about the same ticket show the same
// name, and no part of the ticket itself ever reaches a log.
func (t LaneTicket) String() string { return "ticket-" + secretDigest(t[:]) }

// secretDigest names a secret in logs by the first bytes of its digest.
func secretDigest(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:4])
}

// GoString hides the ticket from %#v as String does from %v, since a struct printed with %#v
// (LaneOpen in a test failure or a debug log) prints its fields with it.
func (t LaneTicket) GoString() string { return "wire.LaneTicket(" + t.String() + ")" }

func appendLaneTicket(b []byte, t LaneTicket) []byte { return append(b, t[:]...) }

func parseLaneTicket(b []byte, field string) (LaneTicket, int, error) {
	var t LaneTicket
	if len(b) < laneTicketLen {
		return LaneTicket{}, 0, fmt.Errorf("%w: %s: need %d bytes, have %d", ErrMalformed, field, laneTicketLen, len(b))
	}
	copy(t[:], b)
	return t, laneTicketLen, nil
}

// LaneTickets asks the sidecar for Count fresh tickets (client, lanes stream), at most
// MaxLaneTickets. The answer is a LaneTicketsReply, or an Error.
type LaneTickets struct {
	Count uint16
}

// Type implements Message.
func (LaneTickets) Type() Type { return TypeLaneTickets }

func (r LaneTickets) check() error { return checkLaneTicketCount(int(r.Count), "lane tickets count") }

func (r LaneTickets) appendPayload(b []byte) []byte { return binary.BigEndian.AppendUint16(b, r.Count) }

func parseLaneTickets(b []byte) (LaneTickets, int, error) {
	count, n, err := parseUint16(b, "lane tickets count")
	if err != nil {
		return LaneTickets{}, 0, err
	}
	if err := checkLaneTicketCount(int(count), "lane tickets count"); err != nil {
		return LaneTickets{}, 0, err
	}
	return LaneTickets{Count: count}, n, nil
}

func checkLaneTicketCount(count int, field string) error {
	if count > MaxLaneTickets {
		return fmt.Errorf("%w: %s: %d, max %d", ErrTooLarge, field, count, MaxLaneTickets)
	}
	return nil
}

// LaneTicketsReply answers LaneTickets (sidecar, lanes stream) with fresh tickets, each good
// for one LaneOpen within TTLMillis of its issue. The sidecar may give fewer than asked for.
type LaneTicketsReply struct {
	Tickets   []LaneTicket
	TTLMillis uint32
}

// Type implements Message.
func (LaneTicketsReply) Type() Type { return TypeLaneTicketsReply }

func (r LaneTicketsReply) check() error {
	return checkLaneTicketCount(len(r.Tickets), "lane tickets")
}

func (r LaneTicketsReply) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Tickets)))
	for _, t := range r.Tickets {
		b = appendLaneTicket(b, t)
	}
	return binary.BigEndian.AppendUint32(b, r.TTLMillis)
}

// parseLaneTicketsReply checks the count against its bound and the bytes left before
// allocating, as parseStrings does. An empty list decodes as nil.
func parseLaneTicketsReply(b []byte) (LaneTicketsReply, int, error) {
	count, n, err := parseCount(b, MaxLaneTickets, laneTicketLen, "lane tickets")
	if err != nil {
		return LaneTicketsReply{}, 0, err
	}
	var r LaneTicketsReply
	if count > 0 {
		r.Tickets = make([]LaneTicket, count)
	}
	for i := range r.Tickets {
		t, m, err := parseLaneTicket(b[n:], "lane ticket")
		if err != nil {
			return LaneTicketsReply{}, 0, err
		}
		r.Tickets[i], n = t, n+m
	}
	ttl, m, err := parseUint32(b[n:], "lane tickets ttl")
	if err != nil {
		return LaneTicketsReply{}, 0, err
	}
	r.TTLMillis = ttl
	return r, n + m, nil
}
