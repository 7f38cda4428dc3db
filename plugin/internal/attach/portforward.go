package attach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/remocal/kubectl-remocal/plugin/internal/within"
)

// portForwarder opens byte streams to one port of a pod through the API server's portforward
// subresource: one long-lived upgraded connection, one pair of streams (data and error) per
// Dial. It re-dials the connection itself when it has dropped, which is what lets the QUIC link
// above survive API server restarts and idle timeouts.
type portForwarder struct {
	restConfig *rest.Config
	namespace  string
	pod        string
	port       int

	mu        sync.Mutex
	conn      httpstream.Connection
	requestID int
}

func newPortForwarder(restConfig *rest.Config, pod *corev1.Pod, port int) *portForwarder {
	return &portForwarder{restConfig: restConfig, namespace: pod.Namespace, pod: pod.Name, port: port}
}

// Dial opens a new stream to the pod's port. Dials run concurrently: each stream's creation
// waits for the kubelet's reply, and the lanes open many at once.
func (f *portForwarder) Dial(ctx context.Context) (net.Conn, error) {
	conn, requestID, err := f.connection(ctx)
	if err != nil {
		return nil, err
	}
	// The kubelet pairs the two streams by request ID in whichever order they come, so both
	// are created at once: one round trip, not two.
	header := func(streamType string) http.Header {
		h := http.Header{}
		h.Set(corev1.PortHeader, strconv.Itoa(f.port))
		h.Set(corev1.PortForwardRequestIDHeader, strconv.Itoa(requestID))
		h.Set(corev1.StreamType, streamType)
		return h
	}
	var errStream httpstream.Stream
	var errErr error
	created := make(chan struct{})
	go func() {
		defer close(created)
		errStream, errErr = conn.CreateStream(header(corev1.StreamTypeError))
	}()
	data, err := conn.CreateStream(header(corev1.StreamTypeData))
	<-created
	if errErr != nil || err != nil {
		for _, s := range []httpstream.Stream{errStream, data} {
			if s != nil {
				_ = s.Reset()
			}
		}
		f.drop(conn)
		return nil, fmt.Errorf("open port-forward streams: %w", errors.Join(errErr, err))
	}
	// Only the kubelet writes on the error stream.
	errStream.Close()
	sc := &streamConn{data: data, reader: newReadAhead(data), errStream: errStream, conn: conn}
	go sc.watchErrors()
	return sc, nil
}

// connection returns the port-forward connection, made anew when it has dropped, and the
// request ID of a new pair of streams on it.
func (f *portForwarder) connection(ctx context.Context) (httpstream.Connection, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		select {
		case <-f.conn.CloseChan():
			f.conn = nil
		default:
		}
	}
	if f.conn == nil {
		conn, err := f.connect(ctx)
		if err != nil {
			return nil, 0, err
		}
		f.conn = conn
	}
	f.requestID++
	return f.conn, f.requestID, nil
}

// drop closes conn, which failed to open a stream, unless it was replaced already.
func (f *portForwarder) drop(conn httpstream.Connection) {
	conn.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == conn {
		f.conn = nil
	}
}

// Break closes the current connection, as an API server restart would. Tests and the
// --debug-break-link-every flag use it to prove the link survives.
func (f *portForwarder) Break() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}

// Close closes the connection for good.
func (f *portForwarder) Close() error {
	f.Break()
	return nil
}

// connect upgrades a connection to the pod's portforward subresource, over WebSocket where the
// API server supports it and SPDY otherwise, as kubectl port-forward does.
func (f *portForwarder) connect(ctx context.Context) (httpstream.Connection, error) {
	client, err := kubernetes.NewForConfig(f.restConfig)
	if err != nil {
		return nil, err
	}
	url := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(f.namespace).Name(f.pod).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(f.restConfig)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: rt}, http.MethodPost, url)
	wsDialer, err := newTunnelDialer(url, f.restConfig)
	if err != nil {
		return nil, err
	}
	dialer := portforward.NewFallbackDialerForStreaming(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	// The dialer takes no context; bound it here so a hung API server cannot hang the session.
	conn, err := within.Call(ctx, func() (httpstream.Connection, error) {
		conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
		if err != nil {
			return nil, fmt.Errorf("port-forward to pod %s: %w", f.pod, err)
		}
		return conn, nil
	}, func(conn httpstream.Connection) { conn.Close() })
	if errors.Is(err, within.ErrNoAnswer) {
		return nil, ctx.Err()
	}
	return conn, err
}

// streamConn is a port-forward data stream as a net.Conn. It has read deadlines, which a
// lane's end needs to wake its reader without closing the connection (the next lane takes
// it); write deadlines are not supported by the streams, and the QUIC layer above keeps its
// own timers.
type streamConn struct {
	data      httpstream.Stream
	reader    *readAhead // data's reads, with deadlines
	errStream httpstream.Stream
	conn      httpstream.Connection
	closeOnce sync.Once
}

func (c *streamConn) Read(b []byte) (int, error)  { return c.reader.Read(b) }
func (c *streamConn) Write(b []byte) (int, error) { return c.data.Write(b) }

// CloseWrite ends the data stream's sending side, after what was written: Close resets the
// stream, and the kubelet may then drop the data it has not yet copied to the pod.
func (c *streamConn) CloseWrite() error { return c.data.Close() }

func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.data.Reset()
		c.reader.Close()
		c.conn.RemoveStreams(c.data, c.errStream)
	})
	return nil
}

// watchErrors resets the data stream when the kubelet reports an error (e.g. nothing listens on
// the port), so a reader sees the failure instead of waiting forever.
func (c *streamConn) watchErrors() {
	msg, _ := io.ReadAll(io.LimitReader(c.errStream, 4096))
	if len(msg) > 0 {
		_ = c.data.Reset()
	}
}

func (c *streamConn) LocalAddr() net.Addr               { return pfAddr{} }
func (c *streamConn) RemoteAddr() net.Addr              { return pfAddr{} }
func (c *streamConn) SetDeadline(time.Time) error       { return errors.ErrUnsupported }
func (c *streamConn) SetReadDeadline(t time.Time) error { return c.reader.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(time.Time) error  { return nil }

type pfAddr struct{}

func (pfAddr) Network() string { return "portforward" }
func (pfAddr) String() string  { return "portforward" }
