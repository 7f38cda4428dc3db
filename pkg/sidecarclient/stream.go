package sidecarclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Stream is one connection carried through the sidecar, dialled from the pod or arrived at a
// subscribed port: on a lane of its own where the sidecar has lanes, else on a QUIC stream.
// Each direction ends on its own, as with TCP's half-close.
type Stream struct {
	c streamConn
}

// streamConn is what carries a Stream: a QUIC stream (quicStream) or a lane (laneStream).
type streamConn interface {
	io.ReadWriter
	CloseWrite() error
	Close() error
	Abandon()
}

func (s *Stream) Read(p []byte) (int, error)  { return s.c.Read(p) }
func (s *Stream) Write(p []byte) (int, error) { return s.c.Write(p) }

// WriteTo copies the pod's side's bytes to w until it ends its direction: on a lane, through
// the lane's pooled buffers (lane.Lane.WriteTo), which io.Copy's would otherwise allocate for
// each connection.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := s.c.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{s.c})
}

// ReadFrom writes r's bytes until r's end of stream, which it does not pass on (CloseWrite
// does): on a lane, through the lane's pooled buffers.
func (s *Stream) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := s.c.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{s.c}, r)
}

// CloseWrite ends our direction, as TCP's FIN; reads go on until the pod's side ends.
func (s *Stream) CloseWrite() error { return s.c.CloseWrite() }

// Close ends both directions: ours after what was written, the pod's at once.
func (s *Stream) Close() error { return s.c.Close() }

// Abandon ends both directions at once, dropping what was written and not yet sent: for a
// stream that will carry nothing more.
func (s *Stream) Abandon() { s.c.Abandon() }

// quicStream carries a Stream on a QUIC stream.
type quicStream struct{ *quic.Stream }

func (q quicStream) CloseWrite() error { return q.Stream.Close() }

func (q quicStream) Close() error {
	q.CancelRead(0)
	return q.Stream.Close()
}

func (q quicStream) Abandon() { abandon(q.Stream) }

// abandon ends both directions of a stream that will carry nothing. Stopping only our read
// would leave our send side open: the sidecar's end of the stream, and its place in the
// connection's stream limit, would then stay taken until the connection ends.
func abandon(stream *quic.Stream) {
	stream.CancelRead(0)
	stream.CancelWrite(0)
}

// Dial connects to address from inside the pod over network ("tcp", or "udp" whose datagrams
// the stream carries framed, wire.WriteDatagram) and returns the stream carrying the
// connection. A refused or unreachable destination returns the pod-side errno (errors.Is with
// syscall.Errno).
func (s *Session) Dial(ctx context.Context, network, address string, timeout time.Duration) (*Stream, error) {
	if s.lanes != nil && network == "tcp" {
		stream, err := s.lanes.dial(ctx, address, timeout)
		var unavailable *laneUnavailableError
		if !errors.As(err, &unavailable) || ctx.Err() != nil {
			return stream, err
		}
		// No lane could be had (the port-forward re-dialling, say): QUIC carries this one.
		s.log.Debug("no lane, dialling on a QUIC stream", "address", address, "err", err)
	}
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
	return &Stream{c: quicStream{stream}}, nil
}
