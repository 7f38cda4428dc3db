package attach

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/quic-go/quic-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// directProbeTimeout bounds the attempt to reach the sidecar on the pod IP: from a laptop outside
// the cluster network it never answers, and the port-forward path must not wait long for that.
const directProbeTimeout = 1500 * time.Millisecond

type linkParams struct {
	restConfig *rest.Config
	pod        *corev1.Pod
	port       int
	mode       Transport
	// family, when set, keeps the direct path to the pod's address of that family: a test of
	// the IPv6 path on a cluster whose primary family is IPv4.
	family corev1.IPFamily
	tls    *tls.Config
	// breakEvery, when set, breaks the port-forward connection at that period: a test of the
	// link's recovery through the real binary.
	breakEvery time.Duration
	// inspect: the session only looks, and label names its user (see sidecarclient.Options).
	inspect bool
	label   string
}

// Session is the link to a sidecar (its client's methods), and what the plugin keeps beside it:
// the target it serves, and what carries the link.
type Session struct {
	*sidecarclient.Session
	// target is the pod and container the session serves, set by ready.
	target *Target
	// closers carry the link (its UDP socket, the port-forward) and watch it; they are
	// closed after it, in order.
	closers []io.Closer
}

// dialSession connects to the sidecar, directly over UDP when a pod IP answers, else through a
// port-forward, and says hello. It reports which path it took.
func dialSession(ctx context.Context, p linkParams) (*Session, string, error) {
	var errs []error
	if addrs := podAddrs(p.pod, p.family); p.mode != TransportPortForward && len(addrs) > 0 {
		s, addr, err := dialDirect(ctx, p, addrs)
		if err == nil {
			return s, "direct UDP to " + addr.String(), nil
		}
		if p.mode == TransportDirect {
			return nil, "", usererr.Wrap(err, fmt.Sprintf("cannot reach the sidecar at %s over UDP: %v (try --transport port-forward)", joinAddrs(addrs), err))
		}
		if errors.Is(err, transport.ErrPinMismatch) {
			return nil, "", err
		}
		klog.V(1).Infof("direct path unavailable, using port-forward: %v", err)
		errs = append(errs, err)
	}
	s, err := dialPortForward(ctx, p)
	if err != nil {
		errs = append(errs, err)
		return nil, "", fmt.Errorf("connect to the sidecar: %w", errors.Join(errs...))
	}
	return s, "port-forward", nil
}

// dialDirect dials the sidecar on the first of the pod's addresses to answer (see firstAnswer)
// and says hello there. It returns the address it took.
func dialDirect(ctx context.Context, p linkParams, addrs []netip.Addr) (*Session, netip.Addr, error) {
	probeCtx, cancel := context.WithTimeout(ctx, directProbeTimeout)
	defer cancel()
	link, addr, err := firstAnswer(probeCtx, addrs, func(ctx context.Context, addr netip.Addr) (*directLink, error) {
		return dialDirectLink(ctx, netip.AddrPortFrom(addr, uint16(p.port)), p.tls)
	})
	if err != nil {
		return nil, netip.Addr{}, err
	}
	s, err := newSession(ctx, link.conn, p, directLanes(link.to.String(), p.tls), link.udp)
	return s, addr, err
}

// directLink is a QUIC connection to the sidecar on one pod address, and its UDP socket.
type directLink struct {
	to   netip.AddrPort
	conn *quic.Conn
	udp  *net.UDPConn
}

func dialDirectLink(ctx context.Context, to netip.AddrPort, tlsConf *tls.Config) (*directLink, error) {
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	conn, err := transport.Dial(ctx, udp, net.UDPAddrFromAddrPort(to), tlsConf)
	if err != nil {
		udp.Close()
		return nil, err
	}
	return &directLink{to: to, conn: conn, udp: udp}, nil
}

// Close ends a link that lost the race to another address.
func (l *directLink) Close() error {
	return errors.Join(l.conn.CloseWithError(0, "another pod address answered first"), l.udp.Close())
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " and ")
}

func dialPortForward(ctx context.Context, p linkParams) (*Session, error) {
	// The QUIC link and the lanes ride port-forward connections of their own. On one
	// connection the link's packets, the lanes' acknowledgements among them, would queue
	// behind the lanes' bytes at every hop of the chain (the plugin's socket, the API server,
	// the kubelet, containerd: one TCP connection each), and a lane's resend window would fill
	// while its acknowledgements wait. Each connection is re-dialled on its own when it drops.
	fw := newPortForwarder(p.restConfig, p.pod, p.port)
	lanes := newPortForwarder(p.restConfig, p.pod, p.port)
	// The transport logs through klog, so -v controls it like everything else.
	logger := slog.New(logr.ToSlogHandler(klog.Background()))
	// The port-forward lives until the session closes, not until ctx ends: ctx is cancelled by
	// Ctrl-C, and the program it goes to may use the pod while it shuts down, and the session
	// gives its ports back on the way out. Until the connection is up, ctx still aborts it.
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	abort := context.AfterFunc(ctx, cancel)
	defer abort()
	pc, err := transport.NewStreamPacketClient(life, fw.Dial, logger)
	if err != nil {
		cancel()
		fw.Close()
		return nil, err
	}
	dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
	defer dcancel()
	conn, err := transport.Dial(dctx, pc, pc.Addr(), p.tls)
	if err != nil {
		cancel()
		pc.Close()
		fw.Close()
		return nil, err
	}
	if p.breakEvery > 0 {
		go breakPeriodically(life, p.breakEvery, fw, lanes)
	}
	// pc closes first: its Close sends what the session queued last (the QUIC connection's
	// close) before the stream goes, and cancelling its context first would drop that.
	return newSession(ctx, conn, p, lanes.Dial, pc, closerFunc(cancel), fw, lanes)
}

// breakPeriodically breaks the port-forward connections every period, as an API server
// restart would break them all.
func breakPeriodically(ctx context.Context, every time.Duration, fws ...*portForwarder) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			klog.V(1).Info("breaking the port-forward connection (--debug-break-link-every)")
			for _, fw := range fws {
				fw.Break()
			}
		}
	}
}

// directLanes opens lanes on the direct path: TCP to the sidecar's port on the pod IP, and TLS
// with the keys and pins of the QUIC link.
func directLanes(addr string, quicTLS *tls.Config) sidecarclient.LaneDialer {
	laneTLS := transport.ForLanes(quicTLS)
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, laneTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// newSession says hello over conn, as p's session; lanes are as in sidecarclient.Options (a
// session that only looks opens no lanes). The closers go with the session, and with conn
// when the hello fails.
func newSession(ctx context.Context, conn *quic.Conn, p linkParams, lanes sidecarclient.LaneDialer, closers ...io.Closer) (*Session, error) {
	if p.inspect {
		lanes = nil
	}
	// The client logs through klog, so -v controls it like everything else.
	client, err := sidecarclient.New(ctx, conn, sidecarclient.Options{Inspect: p.inspect, Label: p.label, Lanes: lanes, Logger: slog.New(logr.ToSlogHandler(klog.Background()))})
	if err != nil {
		for _, c := range closers {
			_ = c.Close()
		}
		return nil, explainRefusedSession(err)
	}
	return &Session{Session: client, closers: closers}, nil
}

// Target is the pod and container the session serves.
func (s *Session) Target() *Target {
	return s.target
}

// Close ends the session, then what carries it.
func (s *Session) Close() error {
	err := s.Session.Close()
	for _, c := range s.closers {
		_ = c.Close()
	}
	return err
}

// Paths are the two ways to one sidecar, each to try on its own, as doctor checks them: the
// sidecar's key is read once, and each path dials with it.
type Paths struct {
	link linkParams
}

// Paths reads the key of pod's sidecar name, which serves port, for dialing it over each path
// with the client key id.
func (a *Attacher) Paths(ctx context.Context, pod *corev1.Pod, name string, port int, id transport.Identity) (Paths, error) {
	serverPin, err := readSidecarFingerprint(ctx, a.Client, pod, name)
	if err != nil {
		return Paths{}, err
	}
	return Paths{link: linkParams{restConfig: a.RESTConfig, pod: pod, port: port, tls: transport.ClientTLS(id, serverPin)}}, nil
}

// Direct is the direct path: QUIC over UDP to the first pod IP to answer, given up after 1.5 s.
// It returns the address that answered.
func (p Paths) Direct(ctx context.Context) (*Session, netip.Addr, error) {
	return dialDirect(ctx, p.link, podAddrs(p.link.pod, ""))
}

// PortForward is the fallback path: QUIC carried in a port-forward through the API server.
func (p Paths) PortForward(ctx context.Context) (*Session, error) {
	return dialPortForward(ctx, p.link)
}
