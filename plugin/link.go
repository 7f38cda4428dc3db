package plugin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/quic-go/quic-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// directProbeTimeout bounds the attempt to reach the sidecar on the pod IP: from a laptop outside
// the cluster network it never answers, and the port-forward path must not wait long for that.
const directProbeTimeout = 1500 * time.Millisecond

// clientFeatures are what this plugin can use; inspect says the session only looks (ls,
// clean), which leaves the sidecar's TTL as it was.
func clientFeatures(inspect bool) []string {
	return slices.DeleteFunc(sidecarapi.Features(), func(f string) bool {
		return f == wire.FeatureInspect && !inspect
	})
}

type linkParams struct {
	restConfig *rest.Config
	pod        *corev1.Pod
	port       int
	mode       transportMode
	tls        *tls.Config
	// breakEvery, when set, breaks the port-forward connection at that period: a test of the
	// link's recovery through the real binary.
	breakEvery time.Duration
	// inspect: the session only looks (see clientFeatures).
	inspect bool
}

// session is an authenticated QUIC connection to a sidecar with its control stream open.
type session struct {
	conn *quic.Conn
	// controlMu keeps each request and its replies together on the control stream, which the
	// layer's goroutines share.
	controlMu sync.Mutex
	control   *quic.Stream
	reader    *wire.Reader
	hello     wire.HelloReply
	// subscribed holds the pod ports this session took (controlMu).
	subscribed map[uint16]bool
	closers    []io.Closer
	stopping   context.CancelFunc
	// target is the pod and container the session serves, set by startSession.
	target *target
}

// dialSession connects to the sidecar, directly over UDP when the pod IP answers, else through a
// port-forward, and says hello. It reports which path it took.
func dialSession(ctx context.Context, p linkParams) (*session, string, error) {
	var errs []error
	if p.mode != transportPortForward && p.pod.Status.PodIP != "" {
		s, err := dialDirect(ctx, p)
		if err == nil {
			return s, "direct UDP to " + p.pod.Status.PodIP, nil
		}
		if p.mode == transportDirect {
			return nil, "", &userError{msg: fmt.Sprintf("cannot reach the sidecar at %s over UDP: %v (try --transport port-forward)", p.pod.Status.PodIP, err), cause: err}
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

func dialDirect(ctx context.Context, p linkParams) (*session, error) {
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	addr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(p.pod.Status.PodIP, strconv.Itoa(p.port)))
	if err != nil {
		udp.Close()
		return nil, err
	}
	probeCtx, cancel := context.WithTimeout(ctx, directProbeTimeout)
	defer cancel()
	conn, err := transport.Dial(probeCtx, udp, addr, p.tls)
	if err != nil {
		udp.Close()
		return nil, err
	}
	return newSession(ctx, conn, p.inspect, udp)
}

func dialPortForward(ctx context.Context, p linkParams) (*session, error) {
	fw := newPortForwarder(p.restConfig, p.pod, p.port)
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
		go breakPeriodically(life, fw, p.breakEvery)
	}
	s, err := newSession(ctx, conn, p.inspect, pc, fw)
	if err != nil {
		cancel()
		return nil, err
	}
	s.stopping = cancel
	return s, nil
}

func breakPeriodically(ctx context.Context, fw *portForwarder, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			klog.V(1).Info("breaking the port-forward connection (--debug-break-link-every)")
			fw.Break()
		}
	}
}

// newSession opens the control stream and exchanges hellos; inspect is as in clientFeatures.
func newSession(ctx context.Context, conn *quic.Conn, inspect bool, closers ...io.Closer) (*session, error) {
	s := &session{conn: conn, closers: closers}
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open control stream: %w", err)
	}
	s.control, s.reader = stream, wire.NewReader(stream)
	if err := wire.WriteMessage(stream, wire.Hello{Version: wire.Version, Features: clientFeatures(inspect), Client: version.Get().Version}); err != nil {
		s.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	msg, err := s.reader.ReadMessage()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("read hello reply: %w", err)
	}
	switch m := msg.(type) {
	case wire.HelloReply:
		s.hello = m
		return s, nil
	case wire.Error:
		s.Close()
		return nil, &userError{msg: "the sidecar refused the session: " + m.Reason + " (a sidecar of another remocal version; pass --sidecar-image matching this plugin)", cause: m}
	default:
		s.Close()
		return nil, fmt.Errorf("unexpected hello reply %T", msg)
	}
}

// The bounds of the environment a sidecar may send, far above real ones (a namespace with a
// thousand Services has about 7,000 service-link variables, about 500 KiB).
const (
	maxEnviron      = 1 << 16
	maxEnvironBytes = 8 << 20
)

// Environ asks the sidecar for the target container's environment, which comes in as many
// replies as it takes.
func (s *session) Environ(ctx context.Context) ([]string, error) {
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if err := wire.WriteMessage(s.control, wire.EnvRequest{}); err != nil {
		return nil, fmt.Errorf("request environment: %w", err)
	}
	var env []string
	size := 0
	for {
		msg, err := s.reader.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("read environment: %w", err)
		}
		switch m := msg.(type) {
		case wire.EnvReply:
			env = append(env, m.Environ...)
			for _, kv := range m.Environ {
				size += len(kv)
			}
			if len(env) > maxEnviron || size > maxEnvironBytes {
				s.outOfStep()
				return nil, fmt.Errorf("the target's environment is over the limit of %d variables or %d MiB", maxEnviron, maxEnvironBytes>>20)
			}
			if !m.More {
				return env, nil
			}
		case wire.Error:
			return nil, &userError{msg: "the sidecar could not read the target's environment: " + m.Reason, cause: m}
		default:
			s.outOfStep()
			return nil, fmt.Errorf("unexpected environment reply %T", msg)
		}
	}
}

// outOfStep gives up the control stream after leaving an answer unread: what follows on it
// would be the rest of that answer, not the next one, so every later request must fail (and
// does, on the cancelled stream) rather than take those replies for its own. controlMu is held.
func (s *session) outOfStep() {
	s.control.CancelRead(0)
}

// ReadFile reads a file of the target container, which comes in as many replies as it takes. A
// failure the sidecar's read got keeps its errno (errors.Is with syscall.ENOENT). Safe for
// concurrent use, like every request on the control stream.
func (s *session) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if !slices.Contains(s.hello.Features, wire.FeatureReadFile) {
		return nil, &userError{msg: "the sidecar cannot read files: a sidecar of an older remocal version (pass --sidecar-image matching this plugin)"}
	}
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if err := wire.WriteMessage(s.control, wire.FileRequest{Path: path}); err != nil {
		return nil, fmt.Errorf("request %s: %w", path, err)
	}
	var data []byte
	for {
		msg, err := s.reader.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		reply, ok := msg.(wire.FileReply)
		if !ok {
			s.outOfStep()
			return nil, fmt.Errorf("read %s: unexpected reply %T", path, msg)
		}
		if err := reply.Err(); err != nil {
			if reply.More { // a failure is the whole answer; a sidecar that says otherwise is lost
				s.outOfStep()
			}
			return nil, fmt.Errorf("read %s in the pod: %w", path, err)
		}
		if len(data)+len(reply.Data) > wire.MaxFileSize {
			s.outOfStep()
			return nil, fmt.Errorf("read %s: the sidecar sent over %d bytes, the most a file may have", path, wire.MaxFileSize)
		}
		data = append(data, reply.Data...)
		if !reply.More {
			return data, nil
		}
	}
}

// Dial connects to address from inside the pod over network ("tcp", or "udp" whose datagrams
// the stream carries framed) and returns the stream carrying the connection. A refused or
// unreachable destination returns the pod-side errno (errors.Is with syscall.Errno).
func (s *session) Dial(ctx context.Context, network, address string, timeout time.Duration) (*quic.Stream, error) {
	stream, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	req := wire.Dial{Network: network, Address: address, TimeoutMillis: uint32(timeout.Milliseconds())}
	if err := wire.WriteMessage(stream, req); err != nil {
		abandon(stream)
		return nil, err
	}
	// The reply is read byte by byte from the stream through a Reader sized to the frame, so no
	// relayed bytes that follow it are consumed.
	msg, err := wire.NewReader(stream).ReadMessage()
	if err != nil {
		abandon(stream)
		return nil, fmt.Errorf("dial %s from the pod: %w", address, err)
	}
	reply, ok := msg.(wire.DialReply)
	if !ok {
		abandon(stream)
		return nil, fmt.Errorf("dial %s from the pod: unexpected reply %T", address, msg)
	}
	if err := reply.Err(); err != nil {
		abandon(stream)
		return nil, fmt.Errorf("dial %s from the pod: %w", address, err)
	}
	return stream, nil
}

// abandon ends both directions of a data stream that will carry nothing. Stopping only our read
// would leave our send side open: the sidecar's end of the stream, and its place in the
// connection's stream limit, would then stay taken until the connection ends.
func abandon(stream *quic.Stream) {
	stream.CancelRead(0)
	stream.CancelWrite(0)
}

// Close ends the session; the sidecar keeps running for the next one until its TTL.
func (s *session) Close() error {
	if s.control != nil {
		s.unsubscribeAll(2 * time.Second)
		_ = s.control.Close()
	}
	st := s.conn.ConnectionStats()
	klog.V(1).InfoS("link statistics", "smoothedRTT", st.SmoothedRTT, "minRTT", st.MinRTT, "congestionWindow", st.CongestionWindow,
		"bytesSent", st.BytesSent, "bytesReceived", st.BytesReceived, "packetsLost", st.PacketsLost)
	err := s.conn.CloseWithError(0, "session ended")
	if s.stopping != nil {
		s.stopping()
	}
	for _, c := range s.closers {
		_ = c.Close()
	}
	return err
}
