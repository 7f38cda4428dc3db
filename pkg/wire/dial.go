package wire

import "encoding/binary"

// Dial is the first message on a data stream: connect from inside the pod to Address, then
// carry the connection's bytes on this stream.
type Dial struct {
	Network       string // "tcp" or "udp"; the sidecar decides what it serves
	Address       string // host:port; host is a name or an IP literal, IPv6 in brackets
	TimeoutMillis uint32 // 0 leaves the timeout to the sidecar
}

// Type implements Message.
func (Dial) Type() Type { return TypeDial }

func (d Dial) check() error {
	if err := checkString(d.Network, maxNetworkLen, "dial network"); err != nil {
		return err
	}
	return checkString(d.Address, maxAddressLen, "dial address")
}

func (d Dial) appendPayload(b []byte) []byte { return appendDial(b, d) }

func appendDial(b []byte, d Dial) []byte {
	b = appendString(b, d.Network)
	b = appendString(b, d.Address)
	return binary.BigEndian.AppendUint32(b, d.TimeoutMillis)
}

func parseDial(b []byte) (Dial, int, error) {
	network, n, err := parseString(b, maxNetworkLen, "dial network")
	if err != nil {
		return Dial{}, 0, err
	}
	address, m, err := parseString(b[n:], maxAddressLen, "dial address")
	if err != nil {
		return Dial{}, 0, err
	}
	n += m
	timeout, m, err := parseUint32(b[n:], "dial timeout")
	if err != nil {
		return Dial{}, 0, err
	}
	return Dial{Network: network, Address: address, TimeoutMillis: timeout}, n + m, nil
}

// DialReply answers a Dial. After a successful one the stream carries the connection.
type DialReply struct {
	// Errno is 0 on success, else the Linux errno of the pod-side connect (ECONNREFUSED,
	// ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ...), so that the local connect can fail exactly as
	// it would have in the pod. Build it with ErrnoOf, read it with Err.
	Errno uint32
	// Reason is for people and logs; shortened when encoded if over-long, like Error.Reason.
	Reason string
}

// Type implements Message.
func (DialReply) Type() Type { return TypeDialReply }

func (DialReply) check() error { return nil }

func (r DialReply) appendPayload(b []byte) []byte { return appendDialReply(b, r) }

func appendDialReply(b []byte, r DialReply) []byte {
	b = binary.BigEndian.AppendUint32(b, r.Errno)
	return appendString(b, clampReason(r.Reason))
}

func parseDialReply(b []byte) (DialReply, int, error) {
	errno, n, err := parseUint32(b, "dial reply errno")
	if err != nil {
		return DialReply{}, 0, err
	}
	reason, m, err := parseString(b[n:], maxReasonLen, "dial reply reason")
	if err != nil {
		return DialReply{}, 0, err
	}
	return DialReply{Errno: errno, Reason: reason}, n + m, nil
}
