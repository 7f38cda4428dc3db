package main

import (
	"context"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveGRPC serves gRPC's standard health service over cleartext HTTP/2 (h2c) until ctx is
// cancelled, reporting SERVING for the one service named name and nothing for the others: a
// client that asks for a name learns whether this server, and not another, answered.
func serveGRPC(ctx context.Context, ln net.Listener, name string, log *slog.Logger) error {
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	stop := context.AfterFunc(ctx, srv.GracefulStop)
	defer stop()
	log.Info("serving grpc health", "addr", ln.Addr().String(), "name", name)
	return srv.Serve(ln)
}
