package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

// serveTCP echoes every byte received on each connection accepted from ln
// until ctx is cancelled. Cancellation closes the listener and every open
// connection, since an echo client may keep a connection idle forever and
// would otherwise hold up the exit; serveTCP returns once all connection
// goroutines have finished.
func serveTCP(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	// The derived context also closes everything when accepting fails, so
	// waiting for the connection goroutines cannot hang.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	context.AfterFunc(ctx, func() { ln.Close() })
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				log.Info("tcp echo stopped")
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() { echoConn(ctx, conn, log) })
	}
}

// echoConn copies conn back to itself until the peer stops sending or ctx
// is cancelled.
func echoConn(ctx context.Context, conn net.Conn, log *slog.Logger) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	log.Debug("tcp connection", "remote", conn.RemoteAddr().String())
	n, err := io.Copy(conn, conn)
	if err != nil && ctx.Err() == nil {
		log.Warn("tcp echo", "remote", conn.RemoteAddr().String(), "bytes", n, "err", err)
	}
}
