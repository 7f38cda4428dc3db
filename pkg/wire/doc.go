// Package wire is the protocol between the plugin and the sidecar, carried on QUIC streams and
// lane connections: the messages, their framing and bounds, and the errno numbers both ends
// agree on.
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
// A stream is told apart by its first message:
//
//   - The control stream opens with [Hello] from the client and [HelloReply] (or [Error]) from
//     the sidecar; the protocol [Version] is checked there, and later additions to the protocol
//     are switched on by the features named in the hello ([Negotiate]) rather than by new
//     versions. Then the client's requests, answered in order: [EnvRequest] by [EnvReply]
//     frames (as many as the environment needs, [SplitEnviron]); [FileRequest] by [FileReply]
//     chunks; [Heartbeat], echoed; [Subscribe] (steal or mirror a pod port, whole or by HTTP
//     filter) and [Unsubscribe] by [SubscribeReply]; [Subscriptions] by [SubscriptionsReply];
//     [Redirects] (list, and clean, the pod's redirect tables) by [RedirectsReply]; [Target]
//     (the target container by its runtime ID) by [TargetReply]; [Sessions] by
//     [SessionsReply]. An [Error] may stand in place of any answer. [SessionLabel], sent
//     once right after the hello, is the one message the sidecar does not answer.
//   - A data stream opens with [Dial] and [DialReply] and then carries the proxied connection:
//     its raw bytes for TCP, which is why [Reader] never reads past the end of a frame, or
//     datagrams for UDP, each with a 2-byte length ([WriteDatagram], [ReadDatagram]).
//   - A filesystem stream carries one operation on the target container's files, [FSRequest]
//     frames and then [FSReply] frames (see [FSOp]), so that no operation waits on another or on
//     the control stream.
//   - An incoming stream is opened by the sidecar: [Incoming] names the pod port and the client
//     of a connection that reached it, whose bytes the stream then carries (a mirror's copy one
//     way).
//   - The lanes stream ([FeatureLanes]), one a session, opened by the client with [LaneControl]:
//     [LaneTickets] answered by [LaneTicketsReply]; both ways [LaneAcks] (bytes received, so
//     that the sender frees what it kept to resend) and [LaneEnd] (a direction's end, or a
//     reset); and from the sidecar [LaneBroken], to make the client re-attach a lane, and
//     [LaneFree] ([FeatureLaneReuse]), to say that a finished lane's connection may carry the
//     next one.
//   - A lane is a connection of its own beside QUIC that carries one proxied TCP connection.
//     It opens with [LaneOpen], which spends a [LaneTicket], and [LaneReply]; then, by its
//     [LaneKind], [Dial] and [DialReply] or [Incoming], and the connection's raw bytes. A lane
//     whose connection broke is re-attached on a new one by a LaneOpen that names it.
//
// Failures of a dial or a file operation carry the pod's Linux errno ([ErrnoOf]), whatever the
// platform at either end, so that the local program gets the pod's error. A sidecar that reached
// its maximum lifetime closes its connections with [CloseMaxLifetime].
package wire
