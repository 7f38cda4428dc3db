package transport

import (
	"net"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
)

const (
	// keepAlivePeriod keeps NAT and port-forward idle timers from expiring and lets each side see
	// traffic from the other at least this often, which the stream path's stall detection relies on.
	keepAlivePeriod = 1 * time.Second
	// maxIdleTimeout bounds how long the sidecar holds resources (redirect rules, dialed connections)
	// for a plugin that died without closing: a stolen port must answer again within 10 s of the
	// plugin's SIGKILL, and removing the rule takes a few hundred milliseconds after this.
	maxIdleTimeout = 7 * time.Second
	// maxIncomingStreams is high because every proxied TCP connection is a stream; a busy local app
	// (a connection pool, a browser) opens hundreds at once.
	maxIncomingStreams = 4096
	// The receive windows bound memory per stream and per connection while allowing about
	// 16 MiB in flight on one stream: about 1.3 Gbit/s at 100 ms RTT.
	maxStreamReceiveWindow     = 16 << 20
	maxConnectionReceiveWindow = 32 << 20
	// streamPacketSize is the largest packet quic-go sends or receives. A byte stream has no MTU,
	// so the stream path uses it from the first packet: fewer, fuller packets for the same data.
	streamPacketSize = 1452
)

// QUICConfig is the QUIC configuration both sides use, so that their limits agree.
func QUICConfig() *quic.Config {
	return &quic.Config{
		EnableDatagrams:            true,
		KeepAlivePeriod:            keepAlivePeriod,
		MaxIdleTimeout:             maxIdleTimeout,
		MaxIncomingStreams:         maxIncomingStreams,
		MaxStreamReceiveWindow:     maxStreamReceiveWindow,
		MaxConnectionReceiveWindow: maxConnectionReceiveWindow,
		// A qlog trace of each connection is written when QLOGDIR is set: the standard way to
		// see what QUIC's loss recovery and congestion control did.
		Tracer: qlog.DefaultConnectionTracer,
	}
}

// streamCarried marks the packet connections that carry QUIC inside a byte stream.
type streamCarried interface {
	net.PacketConn
	carriedInStream()
}

// configFor adapts QUICConfig to the path under pc. On a byte stream, path MTU discovery has
// nothing to discover (quic-go runs it only where it can set the IP Don't Fragment bit, which a
// stream cannot; turning it off says so explicitly) and the largest packet size fits from the start.
func configFor(pc net.PacketConn) *quic.Config {
	conf := QUICConfig()
	if _, ok := pc.(streamCarried); ok {
		conf.DisablePathMTUDiscovery = true
		conf.InitialPacketSize = streamPacketSize
	}
	return conf
}
