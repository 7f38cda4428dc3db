package attach

import (
	"io"
	"os"
	"sync"
	"time"
)

// readAhead gives a reader without deadlines, a port-forward data stream, the read deadlines
// of a net.Conn. A lane that ends wakes its blocked reader with one and hands the connection
// to the next lane, which must find every byte that came after: so a goroutine reads ahead
// one chunk at a time, and Read waits for that chunk or the deadline, never abandoning a read
// of the stream itself.
type readAhead struct {
	chunks   chan chunk    // the reads of the stream, one at a time
	consumed chan struct{} // the last chunk is used up: its buffer may be read into again
	closed   chan struct{}
	close    sync.Once

	deadline deadline

	mu   sync.Mutex // one Read at a time, over rest and err
	rest []byte     // what the current chunk holds beyond what was read
	err  error      // the stream's error, once reached
}

type chunk struct {
	b   []byte
	err error
}

// readAheadBuffer is what one read of the stream takes at most: SPDY and WebSocket frames of
// a port-forward stream are smaller.
const readAheadBuffer = 32 << 10

func newReadAhead(src io.Reader) *readAhead {
	r := &readAhead{
		chunks:   make(chan chunk),
		consumed: make(chan struct{}, 1),
		closed:   make(chan struct{}),
		deadline: newDeadline(),
	}
	go r.pump(src)
	return r
}

// pump reads src, a chunk at a time, until it fails or r is closed.
func (r *readAhead) pump(src io.Reader) {
	buf := make([]byte, readAheadBuffer)
	for {
		n, err := src.Read(buf)
		select {
		case r.chunks <- chunk{buf[:n], err}:
		case <-r.closed:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-r.consumed:
		case <-r.closed:
			return
		}
	}
}

// Read reads what the stream has, waiting until the read deadline at most.
func (r *readAhead) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.rest) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		select {
		case c := <-r.chunks:
			r.rest, r.err = c.b, c.err
			if len(r.rest) == 0 && r.err == nil {
				r.consumed <- struct{}{}
			}
		case <-r.deadline.expired():
			return 0, os.ErrDeadlineExceeded
		case <-r.closed:
			return 0, io.ErrClosedPipe
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	if len(r.rest) == 0 && r.err == nil {
		r.consumed <- struct{}{}
	}
	return n, nil
}

// SetReadDeadline sets when a Read waiting for the stream gives up; zero is never.
func (r *readAhead) SetReadDeadline(t time.Time) error {
	r.deadline.set(t)
	return nil
}

// Close stops the reading ahead; the stream's own Close must end a read of it in progress.
func (r *readAhead) Close() {
	r.close.Do(func() { close(r.closed) })
}

// deadline is a channel closed once a time has passed.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	passed  chan struct{} // closed when the deadline passed
	version uint64        // counts set calls, so that a timer set before fires for nothing
}

func newDeadline() deadline { return deadline{passed: make(chan struct{})} }

// set moves the deadline to t; zero removes it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.version++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if isClosed(d.passed) {
		d.passed = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.passed)
		return
	}
	version, passed := d.version, d.passed
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.version == version {
			close(passed)
		}
	})
}

// expired returns the channel closed when the current deadline passes.
func (d *deadline) expired() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
