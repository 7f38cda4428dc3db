package attach

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/remocal/kubectl-remocal/internal/deadline"
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

	deadline *deadline.Deadline

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
		deadline: deadline.New(),
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
		case <-r.deadline.Wait():
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
	r.deadline.Set(t)
	return nil
}

// Close stops the reading ahead; the stream's own Close must end a read of it in progress.
func (r *readAhead) Close() {
	r.close.Do(func() { close(r.closed) })
}
