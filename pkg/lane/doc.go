// Package lane carries one TCP connection's bytes between the plugin and the sidecar on a
// connection of its own (a lane), beside the QUIC link, and keeps them flowing when that
// connection breaks.
//
// A port-forward drops now and then (idle timeouts, load balancers, an API server restart), and
// every lane riding it breaks at once. The program's connections must not notice, so a lane is
// not its connection: each direction counts its bytes, the receiver acknowledges what it has
// read over the session's QUIC lanes stream ([Set]), and the sender keeps what is not yet
// acknowledged (at most [Options.MaxUnacked] bytes; Write waits while that is full). When the
// connection breaks, the plugin dials a new one, both ends say how much they have received
// ([Lane.Suspend]), and each resends from the other's count ([Lane.Attach]).
//
// The bytes travel as they are, so a lane cannot tell a peer's end of stream from a broken
// connection by what arrives on it: a sender that ends its direction says so first on the QUIC
// stream ([wire.LaneEnd], with its byte count), and an end of stream that comes without one, or
// before all those bytes, is a break.
package lane
