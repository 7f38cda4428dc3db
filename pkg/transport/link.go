package transport

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxPending bounds the frames waiting for the writer: enough for large writes to the stream
	// (few syscalls), small enough that the queue adds little latency on a slow stream.
	maxPending = 256 << 10
	// sendWait is how long WriteTo waits for room when the queue is full. A short burst passes
	// without loss; a sustained excess is dropped, which is the loss signal QUIC's congestion
	// control expects from a real path, and a stalled stream never holds quic-go's sender for long.
	sendWait = 50 * time.Millisecond
	// writeStall fails a stream that accepts no bytes for this long. Streams without write
	// deadlines (some port-forward implementations) rely on the stall watchdog instead.
	writeStall = 10 * time.Second
)

const (
	errLinkClosed = wireError("packet stream closed")
	errStalled    = wireError("packet stream stalled: nothing received")
)

// link is one byte stream carrying frames both ways. Its reader runs in its owner's goroutine
// (readFrames); it runs a writer, which batches frames into large writes, and a watchdog, which
// fails the link when no frame arrives for a whole stall period: a half-dead port-forward
// otherwise hangs instead of failing, and a stream that is never seen to fail is never re-dialed.
type link struct {
	conn net.Conn
	r    *bufio.Reader

	done     chan struct{} // closed when the link has failed
	failOnce sync.Once
	err      error // why it failed; set before done is closed
	wg       sync.WaitGroup

	frames atomic.Int64 // frames received, for the watchdog and for telling a working link apart

	mu      sync.Mutex
	pending []byte        // frames waiting for the writer
	writing bool          // the writer is writing a batch taken from pending
	wake    chan struct{} // has a token when pending became non-empty
	drained chan struct{} // closed when the writer takes pending; made only when a sender waits
	idle    chan struct{} // closed when the writer has written all; made only when flush waits
}

// newLink starts the writer and the watchdog of conn. The owner must call close when done.
func newLink(conn net.Conn, stall time.Duration) *link {
	l := &link{
		conn: conn,
		r:    bufio.NewReaderSize(conn, 2*maxFrameLen),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	l.wg.Add(2)
	go l.writeLoop()
	go l.watch(stall)
	return l
}

// fail stops the link; the first error given is the one reported.
func (l *link) fail(err error) {
	l.failOnce.Do(func() {
		l.err = err
		close(l.done)
		l.conn.Close()
	})
}

// close stops the link and waits for its goroutines.
func (l *link) close() {
	l.fail(errLinkClosed)
	l.wg.Wait()
}

// readHeader reads the header a client sends first, waiting at most timeout for it.
func (l *link) readHeader(timeout time.Duration) (sessionToken, error) {
	// Best effort: the watchdog fails a silent stream anyway, only later.
	_ = l.conn.SetReadDeadline(time.Now().Add(timeout))
	defer l.conn.SetReadDeadline(time.Time{})
	for want := len(streamMagic); ; want = headerLen {
		b, err := l.r.Peek(want)
		tok, n, perr := parseHeader(b)
		switch {
		case perr == nil:
			_, _ = l.r.Discard(n)
			return tok, nil
		case !errors.Is(perr, errTruncated):
			// Garbage is refused as soon as it shows, without waiting for a whole header.
			err = perr
		case err == nil:
			continue
		}
		l.fail(fmt.Errorf("read packet stream header: %w", err))
		return tok, l.err
	}
}

// readFrames passes each received datagram to deliver until the link fails, or deliver returns
// false. The datagram is only valid during the call. It returns why the link ended.
func (l *link) readFrames(deliver func([]byte) bool) error {
	for {
		b, err := l.r.Peek(frameHeaderLen)
		if err == nil {
			var n int
			if n, err = frameLen(b); err == nil {
				b, err = l.r.Peek(n)
			}
		}
		if err != nil {
			l.fail(fmt.Errorf("read packet stream: %w", err))
			return l.err
		}
		p, n, err := parseFrame(b)
		if err != nil {
			// Unreachable: frameLen said the frame is complete.
			l.fail(err)
			return l.err
		}
		l.frames.Add(1)
		if !deliver(p) {
			l.fail(errLinkClosed)
			return l.err
		}
		_, _ = l.r.Discard(n)
	}
}

// send queues p for the writer, copied. When the queue stays full for sendWait, or the link has
// failed, p is dropped, as a congested or broken network path would: QUIC retransmits.
func (l *link) send(p []byte) {
	var timer *time.Timer
	for {
		l.mu.Lock()
		if len(l.pending) == 0 || len(l.pending)+frameHeaderLen+len(p) <= maxPending {
			wasEmpty := len(l.pending) == 0
			l.pending = appendFrame(l.pending, p)
			l.mu.Unlock()
			if wasEmpty {
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
			return
		}
		if l.drained == nil {
			l.drained = make(chan struct{})
		}
		drained := l.drained
		l.mu.Unlock()

		if timer == nil {
			timer = time.NewTimer(sendWait)
			defer timer.Stop()
		}
		select {
		case <-drained:
		case <-timer.C:
			return
		case <-l.done:
			return
		}
	}
}

func (l *link) writeLoop() {
	defer l.wg.Done()
	var batch []byte
	var deadlineSet time.Time
	for {
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
		l.mu.Lock()
		batch, l.pending = l.pending, batch[:0]
		l.writing = len(batch) > 0
		if l.drained != nil {
			close(l.drained)
			l.drained = nil
		}
		l.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		// Moving a deadline costs; move it only when a good part of it has been used up.
		if now := time.Now(); now.Sub(deadlineSet) > writeStall/4 {
			deadlineSet = now
			_ = l.conn.SetWriteDeadline(now.Add(writeStall))
		}
		if _, err := l.conn.Write(batch); err != nil {
			l.fail(fmt.Errorf("write packet stream: %w", err))
			return
		}
		l.mu.Lock()
		l.writing = false
		if len(l.pending) == 0 && l.idle != nil {
			close(l.idle)
			l.idle = nil
		}
		l.mu.Unlock()
	}
}

// finish half-closes the stream, where it can be, and waits at most timeout for the peer to end
// its side. The peer then has all that was written: a port-forward stream closed at once is
// reset, and its far end may drop what it has not yet passed on to the pod.
func (l *link) finish(timeout time.Duration) {
	cw, ok := l.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
	}
}

// flush waits until the writer has written every frame queued so far, for at most timeout, or
// until the link fails. Closing a link drops what is still queued: the last packets of a QUIC
// connection (its CONNECTION_CLOSE) are queued just before, and without them the peer keeps the
// connection until its idle timeout.
func (l *link) flush(timeout time.Duration) {
	l.mu.Lock()
	if len(l.pending) == 0 && !l.writing {
		l.mu.Unlock()
		return
	}
	if l.idle == nil {
		l.idle = make(chan struct{})
	}
	idle := l.idle
	l.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-l.done:
	}
}

// watch fails the link when a whole stall period passes without a frame received.
func (l *link) watch(stall time.Duration) {
	defer l.wg.Done()
	t := time.NewTicker(stall)
	defer t.Stop()
	seen := l.frames.Load()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		n := l.frames.Load()
		if n == seen {
			l.fail(errStalled)
			return
		}
		seen = n
	}
}
