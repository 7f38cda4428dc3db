package wire

import "strconv"

// Version is the protocol version a Hello carries. It changes only for incompatible changes;
// compatible additions are negotiated as features.
const Version uint16 = 1

// MaxFrameSize bounds a frame's payload. A frame announcing more is rejected from its header,
// before any of its payload is read or buffered.
const MaxFrameSize = 64 << 10

// headerLen is the frame header: type and payload length.
const headerLen = 1 + 4

// Feature names a Hello may offer; Negotiate keeps those both sides know.
const (
	FeatureEnv     = "env"
	FeatureDialTCP = "dial-tcp"
	FeatureDialUDP = "dial-udp"
	// FeatureReadFile: FileRequest on the control stream.
	FeatureReadFile = "read-file"
	// FeatureSteal: Subscribe with ModeSteal, and Incoming streams from the sidecar.
	FeatureSteal = "steal"
	// FeatureMirror: Subscribe with ModeMirror; its Incoming streams carry a copy one way.
	FeatureMirror = "mirror"
	// FeatureHTTPFilter: Subscribe with Header or Path; only the matching requests come.
	FeatureHTTPFilter = "http-filter"
	// FeatureHTTPFilterTree: Subscribe with Filter, a tree of header, path, method and query
	// tests under all-of and any-of.
	FeatureHTTPFilterTree = "http-filter-tree"
	// FeatureRedirects: Redirects on the control stream, to list and clean redirect tables.
	FeatureRedirects = "redirects"
	// FeatureFS: FSRequest streams, the target container's filesystem read and changed.
	FeatureFS = "fs"
	// FeatureSubscriptions: Subscriptions on the control stream, to list the ports clients hold.
	FeatureSubscriptions = "subscriptions"
	// FeatureInspect, offered by a client, says it only looks (kubectl remocal ls, clean): its
	// connection does not restart the sidecar's TTL when it ends.
	FeatureInspect = "inspect"
	// FeatureTarget: Target on the control stream, to name the target container's instance.
	FeatureTarget = "target"
	// FeatureLanes: the lanes stream (LaneControl) and lane connections beside QUIC (LaneOpen),
	// each proxied TCP connection on a connection of its own that survives a broken transport.
	FeatureLanes = "lanes"
	// FeatureLaneReuse: a lane connection whose lane ended cleanly carries another lane
	// (LaneFree from the sidecar, then a new LaneOpen on the same connection), rather than a
	// new port-forward stream or TLS handshake for every connection.
	FeatureLaneReuse = "lane-reuse"
	// FeatureSessions: SessionLabel after the hello reply, and Sessions on the control stream,
	// to list the sessions a sidecar serves with their users' labels.
	FeatureSessions = "sessions"
	// FeatureNoRedirect, offered by a sidecar, says it cannot redirect the pod's ports (it
	// lacks NET_ADMIN), so that a session that steals is refused before its program runs; a
	// client offers it to say it understands. Older sidecars never say so: their steal fails
	// when the port is subscribed.
	FeatureNoRedirect = "no-redirect"
)

// Bounds of the fields in a payload. They are far above what a well-behaved peer sends and low
// enough that the worst a peer can make us hold is about one frame.
const (
	maxFeatures    = 64
	maxFeatureLen  = 64
	maxVersionLen  = 256 // plugin and sidecar version strings, only logged
	maxReasonLen   = 4096
	maxNetworkLen  = 16
	maxAddressLen  = 512  // a DNS name is at most 253 bytes; brackets, zone and port fit easily
	maxPathLen     = 4096 // PATH_MAX
	maxEnvEntries  = 1 << 14
	maxEnvEntryLen = MaxFrameSize // a single entry is bounded only by the frame
)

// Type identifies a message in its frame header.
type Type uint8

// The message types. Values are on the wire: append only, never renumber.
const (
	TypeHello Type = 1 + iota
	TypeHelloReply
	TypeEnvRequest
	TypeEnvReply
	TypeHeartbeat
	TypeError
	TypeDial
	TypeDialReply
	TypeFileRequest
	TypeFileReply
	TypeSubscribe
	TypeUnsubscribe
	TypeSubscribeReply
	TypeIncoming
	TypeRedirects
	TypeRedirectsReply
	TypeFSRequest
	TypeFSReply
	TypeSubscriptions
	TypeSubscriptionsReply
	TypeTarget
	TypeTargetReply
	TypeLaneOpen
	TypeLaneReply
	TypeLaneControl
	TypeLaneTickets
	TypeLaneTicketsReply
	TypeLaneAcks
	TypeLaneEnd
	TypeLaneBroken
	TypePeerJoin
	TypePeerDeliver
	TypeSessionLabel
	TypeSessions
	TypeSessionsReply
	TypePeerHandOver
	TypePeerRoute
	TypeLaneFree
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeHelloReply:
		return "hello-reply"
	case TypeEnvRequest:
		return "env-request"
	case TypeEnvReply:
		return "env-reply"
	case TypeHeartbeat:
		return "heartbeat"
	case TypeError:
		return "error"
	case TypeDial:
		return "dial"
	case TypeDialReply:
		return "dial-reply"
	case TypeFileRequest:
		return "file-request"
	case TypeFileReply:
		return "file-reply"
	case TypeSubscribe:
		return "subscribe"
	case TypeUnsubscribe:
		return "unsubscribe"
	case TypeSubscribeReply:
		return "subscribe-reply"
	case TypeIncoming:
		return "incoming"
	case TypeRedirects:
		return "redirects"
	case TypeRedirectsReply:
		return "redirects-reply"
	case TypeFSRequest:
		return "fs-request"
	case TypeFSReply:
		return "fs-reply"
	case TypeSubscriptions:
		return "subscriptions"
	case TypeSubscriptionsReply:
		return "subscriptions-reply"
	case TypeTarget:
		return "target"
	case TypeTargetReply:
		return "target-reply"
	case TypeLaneOpen:
		return "lane-open"
	case TypeLaneReply:
		return "lane-reply"
	case TypeLaneControl:
		return "lane-control"
	case TypeLaneTickets:
		return "lane-tickets"
	case TypeLaneTicketsReply:
		return "lane-tickets-reply"
	case TypeLaneAcks:
		return "lane-acks"
	case TypeLaneEnd:
		return "lane-end"
	case TypeLaneBroken:
		return "lane-broken"
	case TypePeerJoin:
		return "peer-join"
	case TypePeerDeliver:
		return "peer-deliver"
	case TypeSessionLabel:
		return "session-label"
	case TypeSessions:
		return "sessions"
	case TypeSessionsReply:
		return "sessions-reply"
	case TypePeerHandOver:
		return "peer-hand-over"
	case TypePeerRoute:
		return "peer-route"
	case TypeLaneFree:
		return "lane-free"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Message is one protocol message. Only this package defines messages, so that every message
// has a decoder and the set of types a peer may send is closed.
type Message interface {
	Type() Type
	// check reports a field beyond its bound, so that we never send what the peer must reject.
	check() error
	// appendPayload appends the payload encoding; check has passed.
	appendPayload(b []byte) []byte
}
