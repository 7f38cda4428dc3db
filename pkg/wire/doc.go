// Package wire is the control protocol between the plugin and the sidecar, carried on QUIC
// streams: the hello and feature negotiation, the environment request, heartbeats, errors, and
// the request that opens a proxied connection from inside the pod.
//
// Every message travels as one frame:
//
//	type (1 byte) | payload length (4 bytes, big endian, at most MaxFrameSize) | payload
//
// Payloads are compact binary: fixed-width big-endian integers, and strings and string lists
// prefixed with their length or count as a minimal uvarint. Every string and list has a bound,
// and so does the whole frame, so that a hostile or broken peer cannot make the other side
// allocate more than a frame's worth of memory; a frame that announces more is refused from its
// header alone. Decoding is exact: short fields, trailing bytes and non-minimal varints are
// malformed, so every message has exactly one encoding and the fuzz tests can compare bytes.
//
// The control stream opens with [Hello] from the client and [HelloReply] (or [Error]) from the
// sidecar; the protocol [Version] is checked there, and later additions to the protocol are
// switched on by features named in the hello rather than by new versions. A data stream opens
// with [Dial] and [DialReply] and then carries the proxied connection's raw bytes, which is why
// [Reader] never reads past the end of a frame. A filesystem stream carries one operation on the
// target container's files, [FSRequest] frames and then [FSReply] frames, so that no operation
// waits on another or on the control stream.
package wire
