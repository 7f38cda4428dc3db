package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
)

// maxDatagram is the largest UDP payload, so no datagram is truncated.
const maxDatagram = 64 << 10

// serveUDP sends every datagram received on pc back to its sender until ctx
// is cancelled, which closes pc.
func serveUDP(ctx context.Context, pc net.PacketConn, log *slog.Logger) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	defer pc.Close()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				log.Info("udp echo stopped")
				return nil
			}
			return fmt.Errorf("read datagram: %w", err)
		}
		// A failed reply concerns one peer only (e.g. an ICMP unreachable
		// surfacing here); the server keeps going.
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			log.Warn("udp echo reply", "to", from.String(), "err", err)
		}
	}
}
