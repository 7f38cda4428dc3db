package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// AppendMessage appends m as one frame. It fails, leaving b as it was, when a field exceeds its
// bound or the payload exceeds MaxFrameSize, so that we never send what the peer must refuse.
func AppendMessage(b []byte, m Message) ([]byte, error) {
	if m == nil {
		return b, fmt.Errorf("%w: nil message", ErrUnknownType)
	}
	if err := m.check(); err != nil {
		return b, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	start := len(b)
	b = append(b, byte(m.Type()), 0, 0, 0, 0)
	b = m.appendPayload(b)
	size := len(b) - start - headerLen
	if size > MaxFrameSize {
		return b[:start], fmt.Errorf("encode %s: %w: payload is %d bytes, max %d", m.Type(), ErrTooLarge, size, MaxFrameSize)
	}
	binary.BigEndian.PutUint32(b[start+1:], uint32(size))
	return b, nil
}

// ParseMessage parses the frame at the start of b and says how many bytes it took. The message
// does not alias b.
//
// ErrTruncated (unwrapped, so that a caller collecting bytes can test for it cheaply) means b
// holds less than a whole frame, and a frame announcing more than MaxFrameSize is ErrTooLarge
// from its header alone; both return 0. Errors found in a whole frame (ErrUnknownType,
// ErrMalformed, or ErrTooLarge for a list or string over its bound) return the frame's length,
// so that a caller may skip it and stay in step.
func ParseMessage(b []byte) (Message, int, error) {
	if len(b) < headerLen {
		return nil, 0, ErrTruncated
	}
	t, size := Type(b[0]), binary.BigEndian.Uint32(b[1:headerLen])
	if size > MaxFrameSize {
		return nil, 0, tooLarge(t, size)
	}
	end := headerLen + int(size)
	if len(b) < end {
		return nil, 0, ErrTruncated
	}
	m, err := parsePayload(t, b[headerLen:end])
	if err != nil {
		return nil, end, err
	}
	return m, end, nil
}

func tooLarge(t Type, size uint32) error {
	return fmt.Errorf("%w: %s frame announces %d bytes, max %d", ErrTooLarge, t, size, MaxFrameSize)
}

// parsePayload decodes a complete payload of type t, which must be consumed exactly.
func parsePayload(t Type, p []byte) (Message, error) {
	switch t {
	case TypeHello:
		return exact(t, p, parseHello)
	case TypeHelloReply:
		return exact(t, p, parseHelloReply)
	case TypeEnvRequest:
		return exact(t, p, parseEnvRequest)
	case TypeEnvReply:
		return exact(t, p, parseEnvReply)
	case TypeHeartbeat:
		return exact(t, p, parseHeartbeat)
	case TypeError:
		return exact(t, p, parseError)
	case TypeDial:
		return exact(t, p, parseDial)
	case TypeDialReply:
		return exact(t, p, parseDialReply)
	case TypeFileRequest:
		return exact(t, p, parseFileRequest)
	case TypeFileReply:
		return exact(t, p, parseFileReply)
	case TypeSubscribe:
		return exact(t, p, parseSubscribe)
	case TypeUnsubscribe:
		return exact(t, p, parseUnsubscribe)
	case TypeSubscribeReply:
		return exact(t, p, parseSubscribeReply)
	case TypeIncoming:
		return exact(t, p, parseIncoming)
	case TypeRedirects:
		return exact(t, p, parseRedirects)
	case TypeRedirectsReply:
		return exact(t, p, parseRedirectsReply)
	case TypeFSRequest:
		return exact(t, p, parseFSRequest)
	case TypeFSReply:
		return exact(t, p, parseFSReply)
	case TypeSubscriptions:
		return exact(t, p, parseSubscriptions)
	case TypeSubscriptionsReply:
		return exact(t, p, parseSubscriptionsReply)
	case TypeTarget:
		return exact(t, p, parseTarget)
	case TypeTargetReply:
		return exact(t, p, parseTargetReply)
	case TypeLaneOpen:
		return exact(t, p, parseLaneOpen)
	case TypeLaneReply:
		return exact(t, p, parseLaneReply)
	case TypeLaneControl:
		return exact(t, p, parseLaneControl)
	case TypeLaneTickets:
		return exact(t, p, parseLaneTickets)
	case TypeLaneTicketsReply:
		return exact(t, p, parseLaneTicketsReply)
	case TypeLaneAcks:
		return exact(t, p, parseLaneAcks)
	case TypeLaneEnd:
		return exact(t, p, parseLaneEnd)
	case TypeLaneBroken:
		return exact(t, p, parseLaneBroken)
	case TypeLaneFree:
		return exact(t, p, parseLaneFree)
	case TypePeerJoin:
		return exact(t, p, parsePeerJoin)
	case TypePeerDeliver:
		return exact(t, p, parsePeerDeliver)
	case TypeSessionLabel:
		return exact(t, p, parseSessionLabel)
	case TypeSessions:
		return exact(t, p, parseSessions)
	case TypeSessionsReply:
		return exact(t, p, parseSessionsReply)
	case TypePeerHandOver:
		return exact(t, p, parsePeerHandOver)
	case TypePeerRoute:
		return exact(t, p, parsePeerRoute)
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(t))
}

func exact[M Message](t Type, p []byte, parse func([]byte) (M, int, error)) (Message, error) {
	m, n, err := parse(p)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", t, err)
	}
	if n != len(p) {
		return nil, fmt.Errorf("decode %s: %w: %d trailing bytes", t, ErrMalformed, len(p)-n)
	}
	return m, nil
}

// WriteMessage writes m as one frame in a single Write: the frame reaches the stream whole, in
// one call on the stream's send path, and a caller sharing a stream between goroutines has one
// call to guard, never a half-written frame.
func WriteMessage(w io.Writer, m Message) error {
	return WriteMessages(w, m)
}

// WriteMessages writes ms as WriteMessage writes one, all in one Write: on a QUIC stream they
// leave in as few packets as they fit in.
func WriteMessages(w io.Writer, ms ...Message) error {
	if len(ms) == 0 {
		return nil
	}
	var err error
	b := make([]byte, 0, 256)
	for _, m := range ms {
		if b, err = AppendMessage(b, m); err != nil {
			return err
		}
	}
	if _, err := w.Write(b); err != nil {
		if len(ms) == 1 {
			return fmt.Errorf("write %s: %w", ms[0].Type(), err)
		}
		return fmt.Errorf("write %d messages: %w", len(ms), err)
	}
	return nil
}
