// Package sidecar is the agent that the plugin adds to a target pod as an ephemeral container.
//
// It serves QUIC to exactly one client key (pinned on its command line, --client-pin; its own
// key's fingerprint is its first log line, which the plugin reads and pins), over UDP on the
// pod's addresses (the direct path, paused while clients use only the other) and over TCP on
// loopback (the port-forward path, where QUIC packets travel inside the byte stream). The same
// TCP port takes the lanes, a connection of its own for each TCP connection the client's link
// carries, plain on loopback and TLS on the pod's other addresses (lanes.go). It answers the
// client's requests (pkg/wire) from inside the pod:
//
//   - the target container: named by its runtime container ID (wire.Target), its main process
//     found by cgroup; its environment read from /proc/PID/environ through the shared PID
//     namespace, or, when the kernel refuses the sidecar (no CAP_SYS_PTRACE), by a child started
//     as the process's own user (the owner opener, OwnerOpenerArg);
//   - outgoing connections, TCP and UDP (as framed datagrams), dialled from the pod's network
//     namespace;
//   - the target's files, read and changed beneath its root (/proc/PID/root, opened the same
//     way), for the plugin's FUSE mounts and served files;
//   - incoming traffic: a port stolen (an nftables redirect to the sidecar's listener, whole or
//     by HTTP filter) or mirrored (copies from a packet capture, or through the redirect where
//     no packet socket can be had), each connection carried to the client on a stream the
//     sidecar opens; the listing of the sessions (their users' labels, sessions.go) and of the
//     ports they hold, and of the pod's redirect tables, whose dead ones it removes. Every
//     table has a lease the sidecar renews, and a guard process (Guard) removes the tables
//     nobody serves when the worker dies, so the pod's traffic never stays redirected to a
//     process that is gone.
//
// The sidecar's memory is the app pod's, so what clients can make it hold is bounded: clients,
// streams, subscriptions, and the file contents and mirror copies in flight each have a limit
// (server.go, budget.go).
//
// Ephemeral containers can never be removed or restarted, so the sidecar ends by itself after
// --ttl without a client, and after --max-lifetime in any case. It must stay a small static
// binary: it imports no k8s.io package and no cobra, and nothing of the plugin or the layer.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Config is the sidecar's checked configuration, built once from its command line.
type Config struct {
	// Flags are the command line's flags, as the plugin writes them. Direct or not, the UDP
	// socket is not served while clients are connected only over the port-forward path
	// (direct.go).
	sidecarapi.Flags
	// IgnoredFlags are the command line's flags this sidecar does not know
	// (sidecarapi.SplitUnknownFlags), logged after the start line.
	IgnoredFlags []string
	// ProcRoot is where the target's processes are visible; "/proc" but for tests.
	ProcRoot string
	// UDPIdle ends a UDP relay without datagrams for this long; zero is two minutes.
	UDPIdle time.Duration
	// MaxFile bounds a file read or written for the client; zero, or more than a client
	// accepts, is wire.MaxFileSize (16 MiB).
	MaxFile int64
	// LaneTicketTTL is how long a lane ticket stays good; zero is ten seconds.
	LaneTicketTTL time.Duration
}

// NewConfig returns the configuration used when no flag is given.
func NewConfig() Config {
	return Config{Flags: sidecarapi.NewFlags(), ProcRoot: "/proc"}
}

// Validate reports a configuration that Run cannot honour.
func (c Config) Validate() error {
	if c.TTL <= 0 {
		return fmt.Errorf("--ttl must be positive, got %s", c.TTL)
	}
	if c.MaxLifetime <= 0 {
		return fmt.Errorf("--max-lifetime must be positive, got %s", c.MaxLifetime)
	}
	if !strings.HasPrefix(c.ClientPin, "sha256:") {
		return fmt.Errorf("--client-pin must be sha256:HEX, got %q", c.ClientPin)
	}
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("--port must be 1-65535, got %d", c.Port)
	}
	return nil
}

// Run serves until ctx is done or until TTL passes without a client. Both are normal ends and
// return nil: the container's exit code only reports failures.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	id, err := transport.NewIdentity()
	if err != nil {
		return err
	}
	v := version.Get()
	sidecarapi.StartLine{
		Fingerprint: id.Fingerprint(),
		Version:     v.Version,
		Commit:      v.Commit,
		Port:        cfg.Port,
		Direct:      cfg.Direct,
		TTL:         cfg.TTL,
		MaxLifetime: cfg.MaxLifetime,
	}.Log(ctx, logger)
	if len(cfg.IgnoredFlags) > 0 {
		logger.WarnContext(ctx, "ignored flags this sidecar does not know: the plugin is newer", "flags", cfg.IgnoredFlags)
	}

	srv := newServer(cfg, logger)
	defer srv.in.close()
	tlsConf := transport.ServerTLS(id, cfg.ClientPin)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, ctx := errgroup.WithContext(ctx)

	host := "127.0.0.1"
	if cfg.Direct {
		host = "" // every address of the pod's network namespace
	}
	// The TCP port carries the port-forward path's packet streams and the lanes of both
	// paths; the mux sorts them.
	tcpLn, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen for the port-forward path and lanes: %w", err)
	}
	mux := transport.NewPortMux(tcpLn, transport.ForLanes(tlsConf), logger)
	defer mux.Close()
	streamPC := transport.NewStreamPacketServer(mux.Streams(), logger)
	defer streamPC.Close()
	udp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen for the direct path: %w", err)
	}
	defer udp.Close()

	// The direct path pauses while clients are connected only over the port-forward path, so
	// it counts the clients of both.
	direct := newDirectPath(udp, tlsConf, logger)
	forwardLn, err := transport.Listen(streamPC, tlsConf)
	if err != nil {
		return err
	}
	g.Go(func() error {
		// serve returns when ctx ends, once its connections are closed: only then the
		// listener, so their closing frames are sent.
		err := srv.serve(ctx, direct.counted(forwardLn, false))
		return errors.Join(err, forwardLn.Close())
	})
	g.Go(func() error { return direct.run(ctx, srv.serve) })
	g.Go(func() error { return srv.lanes.serve(ctx, mux.AcceptLane) })
	if peerLn, err := listenPeers(cfg.Name); err != nil {
		// Sessions of this sidecar are refused a port another sidecar steals, as before
		// sidecars shared ports.
		logger.WarnContext(ctx, "the pod's other sidecars cannot share ports with this one", "err", err)
	} else if peerLn != nil {
		g.Go(func() error {
			return newPeers(logger, srv.in, srv.idle, func() wire.SessionsReply { return srv.ownSessions(nil) }).serve(ctx, peerLn)
		})
	}
	g.Go(func() error {
		lifetime := time.NewTimer(cfg.MaxLifetime)
		defer lifetime.Stop()
		select {
		case <-ctx.Done():
			return nil
		case <-srv.idle.Expired():
			logger.InfoContext(ctx, "sidecar stopping", "reason", "no client within ttl", "ttl", cfg.TTL.String())
			cancel(errTTL)
		case <-lifetime.C:
			// The clients' connections close with wire.CloseMaxLifetime, and the redirects go
			// with the sessions, as at any other end.
			logger.InfoContext(ctx, "sidecar stopping", "reason", "max lifetime reached", "maxLifetime", cfg.MaxLifetime.String())
			cancel(errMaxLifetime)
		}
		return nil
	})
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, errTTL) && !errors.Is(cause, errMaxLifetime) {
		logger.InfoContext(ctx, "sidecar stopping", "reason", cause.Error())
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errTTL) && !errors.Is(err, errMaxLifetime) {
		return err
	}
	return nil
}

var (
	errTTL         = errors.New("no client within ttl")
	errMaxLifetime = errors.New("max lifetime reached")
)
