package lane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	// DefaultMaxUnacked bounds a direction's unacknowledged bytes, the lane's window. On the
	// port-forward path the acknowledgements come back through the API server's chain behind
	// the other direction's bytes, tens of milliseconds under load: measured on an echo of
	// 256 MiB each way against plain kubectl port-forward, 2 MiB windows gave 0.55x, 8 MiB
	// 0.77x, 16 MiB 0.81-0.86x, 32 MiB 1.11x (docs/benchmarks.md). The memory is taken only
	// while that much is in flight.
	DefaultMaxUnacked = 32 << 20
	// DefaultResumeTimeout ends a lane whose connection broke and was not replaced: a
	// port-forward re-dials within seconds, and the QUIC link itself gives up after its idle
	// timeout.
	DefaultResumeTimeout = time.Minute
	// endGrace is how long an end of stream waits for the peer's LaneEnd, which the peer sends
	// on the QUIC stream just before it: past it, the end of stream is a break.
	endGrace = 250 * time.Millisecond
	// linger bounds how long a closed lane waits for the peer to acknowledge its last bytes
	// and end its own direction before it is reset.
	linger = 30 * time.Second
)

// ErrReset is what Read and Write return once the peer reset the lane.
var ErrReset = fmt.Errorf("lane reset by the peer: %w", syscall.ECONNRESET)

// errClosed is what Read and Write return after Close or Abort.
var errClosed = errors.New("lane closed")

// Options shape a lane.
type Options struct {
	// MaxUnacked bounds the bytes kept for resending; zero is DefaultMaxUnacked.
	MaxUnacked int
	// OnBreak is called in a goroutine of its own when the lane's connection broke while the
	// lane goes on: the plugin re-attaches the lane there (Suspend, a new connection, Attach).
	// The sidecar leaves it nil and waits for the plugin.
	OnBreak func(*Lane)
	// ResumeTimeout aborts a lane whose connection broke and was not replaced within it; zero
	// is DefaultResumeTimeout.
	ResumeTimeout time.Duration
	// Budget, if set, bounds what this lane keeps for resending together with the other
	// lanes sharing it.
	Budget *Budget
	// Recycle keeps the connection of a lane that ends cleanly, for another lane: Recycled
	// returns it once Done is closed. Its reads are woken by a read deadline (or it is closed
	// after all, where it has none and a read is blocked on it), so that no byte of what comes
	// next is taken for this lane's.
	Recycle bool
}

// Lane is one end of a byte stream that outlives the connections carrying it. Read and Write
// may be called from different goroutines, as on a net.Conn.
type Lane struct {
	id   uint64
	set  *Set
	opts Options

	// wmu makes a write to the connection and its bookkeeping one step, and Attach's resend
	// with it.
	wmu sync.Mutex

	mu   sync.Mutex
	cond *sync.Cond // broadcast on every change of the fields below
	conn net.Conn   // nil while detached
	gen  uint64     // counts attachments; a failure of an older one is stale
	// broken: conn failed (or was suspended) and a new one has not been attached yet.
	broken bool
	// attachments counts Attach calls, so that a resume timer knows whether one came.
	attachments uint64
	// readers counts Reads inside conn.Read, which Suspend waits out.
	readers int
	// eof: the current connection's read side ended (before the peer's LaneEnd was known).
	eof bool

	// The sending direction: buf holds [acked, written); sent is how far the current
	// connection got.
	buf         sendBuffer
	written     uint64
	sent        uint64
	acked       uint64
	writeClosed bool // CloseWrite: nothing more is written
	endSent     bool // LaneEnd went out

	// The receiving direction.
	received  uint64
	ackedUpTo uint64 // the received count last acknowledged
	ackQueued bool   // in the set's queue of acks to send
	peerEnded bool
	peerSent  uint64 // the peer's byte count, once it ended

	closing bool // Close was called: finish once everything is acknowledged
	err     error
	done    chan struct{}
	// recycled is the connection kept for another lane (Options.Recycle), set before done
	// is closed.
	recycled net.Conn
}

func newLane(id uint64, set *Set, opts Options) *Lane {
	if opts.MaxUnacked <= 0 {
		opts.MaxUnacked = DefaultMaxUnacked
	}
	if opts.ResumeTimeout <= 0 {
		opts.ResumeTimeout = DefaultResumeTimeout
	}
	l := &Lane{id: id, set: set, opts: opts, broken: true, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// ID names the lane within its session.
func (l *Lane) ID() uint64 { return l.id }

// Done is closed when the lane has ended, cleanly or not.
func (l *Lane) Done() <-chan struct{} { return l.done }

// Attach carries the lane on conn from now on, the old connection being closed. peerReceived
// is how many bytes the peer has received, from where this end resends; the first Attach of a
// lane passes zero.
func (l *Lane) Attach(conn net.Conn, peerReceived uint64) error {
	old, err := l.detach()
	if old != nil {
		_ = old.Close()
	}
	if err != nil {
		_ = conn.Close()
		return err
	}
	l.wmu.Lock()
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		l.wmu.Unlock()
		_ = conn.Close()
		return err
	}
	if peerReceived < l.acked || peerReceived > l.written {
		l.mu.Unlock()
		l.wmu.Unlock()
		_ = conn.Close()
		err := fmt.Errorf("lane %d: the peer says it received %d bytes, outside the %d..%d kept", l.id, peerReceived, l.acked, l.written)
		l.Abort()
		return err
	}
	l.conn, l.broken, l.eof = conn, false, false
	l.attachments++
	if l.attachments > 1 {
		l.set.resumedLane()
	}
	l.sent = peerReceived
	l.ackLocked(peerReceived)
	l.cond.Broadcast()
	l.mu.Unlock()
	l.wmu.Unlock()
	l.flush()
	return nil
}

// Suspend detaches the lane from its connection, which it closes, and returns how many bytes
// this end has received: what the peer resends from. Reads on the old connection are over
// when it returns, so the count holds until the next Attach.
func (l *Lane) Suspend() (received uint64, err error) {
	old, err := l.detach()
	if old != nil {
		_ = old.Close()
	}
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.readers > 0 {
		l.cond.Wait()
	}
	return l.received, l.err
}

// detach takes the lane off its connection and returns that connection for the caller to
// close, which also breaks off a Read or Write blocked on it.
func (l *Lane) detach() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.conn
	l.conn, l.broken = nil, true
	l.gen++
	l.cond.Broadcast()
	return old, l.err
}

// Received is how many bytes this end has read from the lane.
func (l *Lane) Received() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.received
}

// Write keeps p for resending, waiting while MaxUnacked bytes are unacknowledged, and sends
// it on the current connection. A broken connection is not an error: the bytes go out again
// on the next one.
func (l *Lane) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		l.mu.Lock()
		for l.err == nil && !l.writeClosed && l.buf.size >= l.opts.MaxUnacked {
			l.cond.Wait()
		}
		switch {
		case l.err != nil:
			err := l.err
			l.mu.Unlock()
			return total, err
		case l.writeClosed:
			l.mu.Unlock()
			return total, fmt.Errorf("lane %d: write after CloseWrite", l.id)
		}
		k := min(len(p), l.opts.MaxUnacked-l.buf.size)
		l.mu.Unlock()
		if l.opts.Budget != nil {
			if k = int(l.opts.Budget.take(int64(k), l.done)); k == 0 {
				return total, l.terminalErr()
			}
		}
		l.mu.Lock()
		if l.err != nil || l.writeClosed {
			l.mu.Unlock()
			l.giveBudget(k)
			continue // the switch above says why
		}
		l.buf.append(p[:k])
		l.written += uint64(k)
		l.mu.Unlock()
		l.flushWith(p[:k])
		total += k
		p = p[k:]
	}
	return total, nil
}

// flush sends what is written and not yet sent on the current connection, then, after
// CloseWrite, ends the direction.
func (l *Lane) flush() { l.flushWith(nil) }

// flushWith is flush after a Write of last, the newest bytes written: when they are all
// that is to send, they go out as they came, in one piece, rather than as the buffer's chunks
// hold them (a write across two chunks would be two frames on a port-forward stream).
func (l *Lane) flushWith(last []byte) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	conn, gen, from, to := l.conn, l.gen, l.sent, l.written
	if conn == nil || l.broken || l.err != nil {
		l.mu.Unlock()
		return
	}
	var bufs net.Buffers
	if len(last) > 0 && to-from == uint64(len(last)) {
		bufs = net.Buffers{last}
	} else {
		// The slices stay valid while written: trim drops chunks without reusing them.
		bufs = l.buf.slices(from, to)
	}
	l.mu.Unlock()
	if len(bufs) > 0 {
		if _, err := bufs.WriteTo(conn); err != nil {
			l.failed(gen, err)
			return
		}
	}
	l.mu.Lock()
	if gen != l.gen {
		l.mu.Unlock()
		return
	}
	l.sent = to
	l.set.count(0, to-from)
	end := l.writeClosed && l.sent == l.written && !l.endSent
	l.endSent = l.endSent || end
	l.mu.Unlock()
	// The connection is not half-closed: on the port-forward path containerd tears a
	// stream down a second after either direction ends, and the other direction may go on
	// for long. LaneEnd alone ends the direction.
	if end {
		l.set.sendEnd(l.id, to, false)
	}
}

// CloseWrite ends this direction after the bytes written, as TCP's FIN.
func (l *Lane) CloseWrite() error {
	l.mu.Lock()
	if l.writeClosed || l.err != nil {
		l.mu.Unlock()
		return nil
	}
	l.writeClosed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	l.flush()
	return nil
}

// Read reads the peer's bytes, across connections: it waits while the lane is detached, and
// returns io.EOF only once the peer ended its direction and all its bytes arrived.
func (l *Lane) Read(p []byte) (int, error) {
	for {
		conn, gen, err := l.readable()
		if err != nil {
			return 0, err
		}
		n, err := conn.Read(p)
		l.readDone(gen, uint64(n), err)
		if n > 0 {
			return n, nil
		}
	}
}

// readable waits for a connection to read from, and counts the caller among its readers.
func (l *Lane) readable() (net.Conn, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		switch {
		case l.err != nil:
			return nil, 0, l.err
		case l.peerEnded && l.received == l.peerSent:
			return nil, 0, io.EOF
		case !l.broken && !l.eof:
			l.readers++
			return l.conn, l.gen, nil
		}
		l.cond.Wait()
	}
}

// readDone counts n bytes read from the connection of generation gen, and judges the error
// that ended the read, if any.
func (l *Lane) readDone(gen, n uint64, err error) {
	l.mu.Lock()
	l.readers--
	l.received += n
	if n > 0 {
		l.set.count(n, 0)
		l.queueAckLocked()
	}
	if l.readers == 0 || n > 0 {
		l.cond.Broadcast()
	}
	if err == nil || gen != l.gen || l.broken || l.peerEnded && l.received == l.peerSent {
		// With the peer's whole stream here, whatever ended the read (peerEnd's wake-up,
		// the connection's close) is the end of it: Read returns io.EOF.
		l.mu.Unlock()
		return
	}
	if !errors.Is(err, io.EOF) {
		l.mu.Unlock()
		l.failed(gen, err)
		return
	}
	l.eof = true
	l.cond.Broadcast()
	switch {
	case l.peerEnded && l.received == l.peerSent:
		l.mu.Unlock() // the peer's end: Read returns io.EOF
	case l.peerEnded:
		l.mu.Unlock()
		l.failed(gen, fmt.Errorf("end of stream after %d of the %d bytes sent", l.received, l.peerSent))
	default:
		l.mu.Unlock()
		// The peer's LaneEnd may still be on its way on the QUIC stream.
		time.AfterFunc(endGrace, func() {
			l.mu.Lock()
			late := gen == l.gen && !l.broken && !(l.peerEnded && l.received == l.peerSent)
			l.mu.Unlock()
			if late {
				l.failed(gen, errors.New("end of stream without the peer's end"))
			}
		})
	}
}

// failed marks the connection of generation gen broken: the lane waits for the next one.
func (l *Lane) failed(gen uint64, err error) {
	l.mu.Lock()
	if gen != l.gen || l.broken || l.err != nil {
		l.mu.Unlock()
		return
	}
	conn, attachments := l.conn, l.attachments
	l.broken = true
	l.cond.Broadcast()
	l.mu.Unlock()
	_ = conn.Close()
	l.set.broke(l, err)
	time.AfterFunc(l.opts.ResumeTimeout, func() {
		l.mu.Lock()
		stale := l.attachments == attachments
		l.mu.Unlock()
		if stale {
			l.abort(fmt.Errorf("lane %d: not resumed within %s: %w", l.id, l.opts.ResumeTimeout, err), true)
		}
	})
	if l.opts.OnBreak != nil {
		go l.opts.OnBreak(l)
	}
}

// peerAcked frees what the peer says it received.
func (l *Lane) peerAcked(received uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if received > l.written {
		return fmt.Errorf("lane %d: acknowledged %d bytes of %d written", l.id, received, l.written)
	}
	l.ackLocked(received)
	l.finishIfDoneLocked()
	return nil
}

func (l *Lane) ackLocked(received uint64) {
	if received <= l.acked {
		return
	}
	l.buf.trim(received)
	l.giveBudget(int(received - l.acked))
	l.acked = received
	l.cond.Broadcast()
}

// giveBudget returns n bytes to the shared budget, if any.
func (l *Lane) giveBudget(n int) {
	if l.opts.Budget != nil {
		l.opts.Budget.give(int64(n))
	}
}

// terminalErr is why the lane ended.
func (l *Lane) terminalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return errClosed
}

// peerEnd records the peer's LaneEnd: its direction ended after sent bytes, or it reset the
// lane.
func (l *Lane) peerEnd(sent uint64, reset bool) error {
	if reset {
		l.abort(ErrReset, false)
		return nil
	}
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return nil
	}
	if l.received > sent {
		l.mu.Unlock()
		return fmt.Errorf("lane %d: the peer ended after %d bytes, %d arrived", l.id, sent, l.received)
	}
	l.peerEnded, l.peerSent = true, sent
	l.cond.Broadcast()
	if l.received == sent && l.received > l.ackedUpTo {
		l.queueAckLocked() // the last bytes came before the end: their acknowledgement is final
	}
	gen, conn := l.gen, l.conn
	cut := l.eof && l.received < sent && !l.broken
	l.finishIfDoneLocked()
	// A Read blocked on the connection would wait for bytes that never come: no end of
	// stream follows LaneEnd. Wake it, with a deadline where the connection has them, else
	// by taking the lane off the connection (the other direction resumes on a new one). A
	// lane that finished just now wakes its reads as it lets go of the connection; the
	// deadline is set under the lock so that it never outlives that, on a recycled connection.
	wake := l.err == nil && l.received == sent && l.readers > 0 && !l.broken && conn != nil
	woken := false
	if d, ok := conn.(readDeadliner); wake && ok {
		woken = d.SetReadDeadline(time.Now()) == nil
	}
	l.mu.Unlock()
	if cut {
		l.failed(gen, fmt.Errorf("end of stream after %d of the %d bytes sent", l.received, sent))
	}
	if wake && !woken {
		l.failed(gen, errPeerEnded)
	}
	return nil
}

// readDeadliner is a connection whose blocked reads a deadline wakes.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// errPeerEnded is why a connection without read deadlines was taken off a lane whose peer
// ended its direction.
var errPeerEnded = errors.New("woken at the peer's end")

// queueAckLocked puts the lane in the set's queue of acknowledgements to send: to go at once
// when a quarter of what the peer may keep is unacknowledged, since the peer's writes wait
// for it; as the lanes' ends go once all the peer's bytes are here, since the peer's lane
// waits for it to finish; else within ackDelay.
func (l *Lane) queueAckLocked() {
	when := ackLater
	switch {
	case l.received-l.ackedUpTo >= uint64(l.opts.MaxUnacked/4):
		when = ackNow
	case l.peerEnded && l.received == l.peerSent:
		when = ackPaced
	}
	switch {
	case !l.ackQueued:
		l.ackQueued = true
		l.set.queueAck(l, when)
	case when == ackNow:
		l.set.wake() // queued to wait, and now it must not
	case when == ackPaced:
		l.set.paceAck()
	}
}

// takeAck returns the count to acknowledge now, and takes the lane out of the queue.
func (l *Lane) takeAck() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ackQueued = false
	if l.received == l.ackedUpTo {
		return 0, false
	}
	l.ackedUpTo = l.received
	return l.received, true
}

// Close ends this direction after what was written and stops reading: the lane finishes once
// the peer has everything and has ended its own direction, whose further bytes are dropped.
// A peer that has all of this end's bytes but goes on sending for closeGrace more is reset,
// as a TCP close with data unread resets the connection; so is one that has not taken this
// end's bytes within linger.
func (l *Lane) Close() error {
	_ = l.CloseWrite()
	l.mu.Lock()
	if l.closing || l.err != nil {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.finishIfDoneLocked()
	l.mu.Unlock()
	go func() { _, _ = io.Copy(io.Discard, onlyReader{l}) }()
	go l.lingerClosed()
	return nil
}

// closeGrace is how long a closed lane waits for the peer to end its direction once the peer
// has all of this end's bytes: the time for the far end to see the end and close in turn.
const closeGrace = 2 * time.Second

// lingerClosed resets a closed lane that does not finish: see Close.
func (l *Lane) lingerClosed() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(linger)
	var allAcked time.Time
	for {
		select {
		case <-l.done:
			return
		case now := <-tick.C:
			l.mu.Lock()
			acked := l.acked == l.written
			l.mu.Unlock()
			if acked && allAcked.IsZero() {
				allAcked = now
			}
			if now.After(deadline) || !allAcked.IsZero() && now.Sub(allAcked) > closeGrace {
				l.Abort()
				return
			}
		}
	}
}

// finishIfDoneLocked ends a closing lane whose bytes both ways have all arrived.
func (l *Lane) finishIfDoneLocked() {
	if !l.closing || l.err != nil || !l.endSent || l.acked != l.written || !l.peerEnded || l.received != l.peerSent {
		return
	}
	l.err = errClosed
	l.cond.Broadcast()
	conn := l.conn
	l.conn = nil
	if l.opts.Recycle && conn != nil {
		go l.recycle(conn)
		return
	}
	go l.finish(conn)
}

// Recycled returns the connection of a lane that ended cleanly with Options.Recycle, for
// another lane to use, or nil: the lane ended otherwise, or a read could not be woken. It is
// known once Done is closed, and returned once.
func (l *Lane) Recycled() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	conn := l.recycled
	l.recycled = nil
	return conn
}

// recycle ends a lane that finished cleanly keeping its connection, once nothing of the lane
// uses it: its blocked reads are woken (the peer sends nothing more on the lane) and have
// returned, and its last write has.
func (l *Lane) recycle(conn net.Conn) {
	deadlines, _ := conn.(readDeadliner)
	l.mu.Lock()
	if l.readers > 0 && (deadlines == nil || deadlines.SetReadDeadline(time.Now()) != nil) {
		l.mu.Unlock()
		l.finish(conn)
		return
	}
	for l.readers > 0 {
		l.cond.Wait()
	}
	l.mu.Unlock()
	// peerEnd may have set a deadline to wake a read earlier.
	if deadlines != nil && deadlines.SetReadDeadline(time.Time{}) != nil {
		l.finish(conn)
		return
	}
	l.wmu.Lock()
	l.mu.Lock()
	l.recycled = conn
	l.mu.Unlock()
	l.wmu.Unlock()
	l.finish(nil)
}

// Abort ends the lane at once, both ways, and tells the peer to do the same.
func (l *Lane) Abort() { l.abort(errClosed, true) }

func (l *Lane) abort(err error, tellPeer bool) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	conn := l.conn
	l.conn = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	if tellPeer {
		l.set.sendEnd(l.id, 0, true)
	}
	l.finish(conn)
}

func (l *Lane) finish(conn net.Conn) {
	if conn != nil {
		_ = conn.Close()
	}
	l.mu.Lock()
	held := l.buf.size
	l.buf = sendBuffer{}
	l.acked = l.written
	l.mu.Unlock()
	l.giveBudget(held)
	l.set.remove(l)
	close(l.done)
}

// onlyReader hides Lane's other methods from io.Copy.
type onlyReader struct{ io.Reader }
