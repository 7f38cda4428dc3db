// Package transport is how the plugin and the sidecar reach each other: QUIC (quic-go) with mutual
// TLS pinned to one key on each side, carried either directly over UDP to the pod IP or, where the
// pod IP is out of reach, over a byte stream such as a Kubernetes port-forward.
//
// A port-forward carries only TCP and drops now and then (idle timeouts, apiserver restarts). The
// stream path therefore frames QUIC packets as length-prefixed datagrams inside the byte stream and
// presents them as a [net.PacketConn] whose peer address outlives any one stream: when a stream
// drops, the client dials a new one underneath and the QUIC connection, with all its streams, goes
// on as if a few packets had been lost.
//
// Wire format of one stream (client to server and back):
//
//	client → server, once:  "RMCQ" | version (1 byte, 1) | session token (16 bytes)
//	both ways, repeated:    length (2 bytes, big endian, 1..65535) | QUIC packet
//
// The session token is 128 random bits that only the client and the server hold: it tells the
// server which virtual peer a new stream continues, and only a stream that presents it can take
// the place of the session's stream. Logs and addresses show the session's [SessionID], a hash of
// the token. The token authenticates nothing else: authentication is QUIC's TLS with pinned keys
// ([ServerTLS], [ClientTLS]).
package transport
