package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remocal/kubectl-remocal/internal/deadline"
)

const (
	// dialTimeout bounds one attempt to open a stream, so a hung attempt is retried.
	dialTimeout = 10 * time.Second
	// clientStall fails a stream that delivers nothing for this long, then re-dials. While a QUIC
	// connection lives, keep-alives (every keepAlivePeriod) arrive well within it; a stream silent
	// for 1-2 stall periods is dead even if it never said so. The sum of 2 stall periods and a
	// re-dial must stay under maxIdleTimeout, or the QUIC connection dies before its new stream is up.
	clientStall = 2 * time.Second
	// minBackoff and maxBackoff space the re-dial attempts after the first.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
	// closeFlush bounds how long Close waits for the packets already written to reach the
	// stream: on a working stream that is at once; on a stuck one, Close must not hang.
	closeFlush = time.Second
	// closeFinish bounds how long Close waits for the server to end the stream after this
	// end's half-close: a round trip on a working stream.
	closeFinish = 500 * time.Millisecond
)

// clientTiming holds the durations of a StreamPacketClient, so tests can shorten them.
type clientTiming struct {
	dialTimeout            time.Duration
	stall                  time.Duration
	minBackoff, maxBackoff time.Duration
}

// StreamPacketClient is the plugin's end of the stream path: a [net.PacketConn] with one peer,
// [StreamPacketClient.Addr], reached over byte streams that it dials itself. When a stream fails it
// dials a new one with the same session, so the QUIC connection on top goes on. ReadFrom waits
// across re-dials; WriteTo drops packets while there is no stream, as a lossy network would.
//
// A stream is judged by what arrives on it, and QUIC keep-alives arrive only while a QUIC
// connection runs on top: without one, a stream looks stalled and is re-dialed every few seconds.
// Close the client when its connection ends.
type StreamPacketClient struct {
	dial   func(ctx context.Context) (net.Conn, error)
	log    *slog.Logger
	token  sessionToken
	id     SessionID
	peer   streamAddr
	in     *inbox
	timing clientTiming

	cur       atomic.Pointer[link] // nil between streams
	redials   atomic.Int64
	finishing atomic.Bool // Close is ending the stream: no re-dial

	closed    chan struct{}
	closeOnce sync.Once
	cancel    context.CancelFunc // stops re-dialing
	done      chan struct{}      // closed when the re-dial loop has returned
}

var _ streamCarried = (*StreamPacketClient)(nil)

// NewStreamPacketClient dials the first stream with dial and returns once it is open (or with the
// error of that first attempt). From then on it re-dials whenever the current stream fails: at once,
// then with backoff from 50ms doubling to 2s, until ctx is done or Close is called.
//
// ctx bounds the client's whole life: when it is done the client closes as if Close were called.
// The ctx passed to dial bounds one dial attempt only, as with net.Dialer.DialContext; the stream
// dial returns must outlive it. log receives stream events; nil discards them.
func NewStreamPacketClient(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), log *slog.Logger) (*StreamPacketClient, error) {
	return newStreamPacketClient(ctx, dial, log, clientTiming{
		dialTimeout: dialTimeout,
		stall:       clientStall,
		minBackoff:  minBackoff,
		maxBackoff:  maxBackoff,
	})
}

func newStreamPacketClient(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), log *slog.Logger, timing clientTiming) (*StreamPacketClient, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	token, err := newSessionToken()
	if err != nil {
		return nil, err
	}
	id := token.id()
	closed := make(chan struct{})
	c := &StreamPacketClient{
		dial:   dial,
		log:    log.With("session", id),
		token:  token,
		id:     id,
		peer:   streamAddr{id: id, role: "server"},
		in:     newInbox(closed),
		timing: timing,
		closed: closed,
		done:   make(chan struct{}),
	}
	l, err := c.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("open packet stream: %w", err)
	}
	c.cur.Store(l)
	runCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	context.AfterFunc(runCtx, c.shutdown)
	go c.run(runCtx, l)
	return c, nil
}

// connect opens one stream and sends the header that continues the session.
func (c *StreamPacketClient) connect(ctx context.Context) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timing.dialTimeout)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	// The header is written here, before the link's writer starts, so it is the first thing on the
	// stream. A write stuck on a broken stream is ended by closing the stream when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	_, err = conn.Write(appendHeader(nil, c.token))
	if !stop() {
		err = errors.Join(err, context.Cause(ctx))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("write packet stream header: %w", err)
	}
	return newLink(conn, c.timing.stall), nil
}

// run reads the current stream and replaces it when it fails, until the client is closed.
func (c *StreamPacketClient) run(ctx context.Context, l *link) {
	defer close(c.done)
	b := backoff{min: c.timing.minBackoff, max: c.timing.maxBackoff}
	for {
		stop := l.done
		err := l.readFrames(func(p []byte) bool { return c.in.put(p, c.peer, stop) })
		c.cur.CompareAndSwap(l, nil)
		l.close()
		if deadline.IsClosed(c.closed) || c.finishing.Load() {
			return
		}
		// A stream that carried packets worked; one that failed before any did (the sidecar is
		// not listening yet, say) must not be re-dialed in a tight loop.
		if l.frames.Load() > 0 {
			b.reset()
		}
		c.log.Info("packet stream lost; re-dialing", "err", err)
		lost := time.Now()
		if l = c.redial(ctx, &b); l == nil {
			return
		}
		c.redials.Add(1)
		c.cur.Store(l)
		if deadline.IsClosed(c.closed) {
			// Close ran while the stream was being dialed and did not see it.
			l.close()
			return
		}
		c.log.Info("packet stream restored", "gap", time.Since(lost), "redials", c.redials.Load())
	}
}

// redial dials until it has a stream, or returns nil when ctx is done.
func (c *StreamPacketClient) redial(ctx context.Context, b *backoff) *link {
	for attempt := 1; ; attempt++ {
		if d := b.wait(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		}
		l, err := c.connect(ctx)
		if err == nil {
			return l
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("re-dial packet stream", "attempt", attempt, "err", err)
	}
}

// shutdown closes the client without waiting for its goroutine, so it may run anywhere.
func (c *StreamPacketClient) shutdown() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.cancel()
		if l := c.cur.Load(); l != nil {
			l.fail(errLinkClosed)
		}
	})
}

// Close stops re-dialing, ends the current stream once the packets written before are on it
// and the server has them (bounded by closeFlush and closeFinish), and waits until nothing
// runs any more.
func (c *StreamPacketClient) Close() error {
	if l := c.cur.Load(); l != nil && !deadline.IsClosed(c.closed) {
		l.flush(closeFlush)
		// The stream ends from here on: its end is not a loss to re-dial for.
		c.finishing.Store(true)
		l.finish(closeFinish)
	}
	c.shutdown()
	<-c.done
	return nil
}

// Addr is the virtual address of the server: pass it to [Dial].
func (c *StreamPacketClient) Addr() net.Addr { return c.peer }

// SessionID names this client's session on the server, for logs.
func (c *StreamPacketClient) SessionID() SessionID { return c.id }

// Redials counts the streams dialed after the first, which is how often a stream was lost.
func (c *StreamPacketClient) Redials() int64 { return c.redials.Load() }

// ReadFrom returns the next packet from the server, waiting across re-dials.
func (c *StreamPacketClient) ReadFrom(b []byte) (int, net.Addr, error) {
	return c.in.readFrom(b)
}

// WriteTo sends b on the current stream, or drops it when there is none at the moment (QUIC
// retransmits). It waits only briefly when the stream is congested (see link.send).
func (c *StreamPacketClient) WriteTo(b []byte, addr net.Addr) (int, error) {
	if deadline.IsClosed(c.closed) {
		return 0, &net.OpError{Op: "write", Net: streamNetwork, Addr: addr, Err: net.ErrClosed}
	}
	if to, ok := addr.(streamAddr); !ok || to != c.peer {
		return 0, &net.OpError{Op: "write", Net: streamNetwork, Addr: addr, Err: fmt.Errorf("not this client's server address: %v", addr)}
	}
	if err := checkDatagramLen(b); err != nil {
		return 0, &net.OpError{Op: "write", Net: streamNetwork, Addr: addr, Err: err}
	}
	if l := c.cur.Load(); l != nil {
		l.send(b)
	}
	return len(b), nil
}

// LocalAddr is the virtual address of this end of the session.
func (c *StreamPacketClient) LocalAddr() net.Addr { return streamAddr{id: c.id, role: "client"} }

// SetDeadline sets the read deadline; see SetWriteDeadline.
func (c *StreamPacketClient) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline makes a blocked or later ReadFrom return a timeout at t.
func (c *StreamPacketClient) SetReadDeadline(t time.Time) error {
	c.in.deadline.Set(t)
	return nil
}

// SetWriteDeadline does nothing: WriteTo never blocks longer than a short, fixed wait.
func (c *StreamPacketClient) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer does nothing and succeeds; see [StreamPacketServer.SetReadBuffer].
func (c *StreamPacketClient) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing and succeeds; see [StreamPacketServer.SetReadBuffer].
func (c *StreamPacketClient) SetWriteBuffer(int) error { return nil }

func (c *StreamPacketClient) carriedInStream() {}
