package sidecar

import (
	"log/slog"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// mirrorBacklog bounds what a mirrored connection's copy may hold while its stream is slower
// than the pod's traffic: past it, the copy is given up rather than slowing the app's client.
const mirrorBacklog = 4 << 20

// mirrorStall gives up a copy whose stream takes nothing for this long (a client that stopped
// reading), so that its goroutine and backlog do not outlive the connection by more.
const mirrorStall = 10 * time.Second

// mirrorCopy sends a copy of what a connection's client sends to the pod's app to a client of
// the sidecar, on a stream of its own, without ever making the connection wait: Write queues,
// a goroutine sends, and a copy that falls behind by mirrorBacklog, or whose queue finds the
// copies' budget (copyBudget) spent, is dropped. The app's answers
// are not copied: the local program answers the same requests itself, and its answers are
// discarded by the plugin.
type mirrorCopy struct {
	log *slog.Logger
	// hold is the share of the copies' budget that the queue holds.
	hold *hold

	mu      sync.Mutex
	ready   *sync.Cond
	queue   [][]byte
	queued  int
	ended   bool // finish was called: send what is queued, then close
	dropped bool // the copy is given up: the stream failed or fell behind
	stream  *quic.Stream

	done chan struct{} // closed when the sending goroutine returns
}

func newMirrorCopy(log *slog.Logger, copies *budget, client *quic.Conn, arrival wire.Incoming) *mirrorCopy {
	m := &mirrorCopy{log: log.With("port", arrival.Port, "from", arrival.Remote), hold: copies.hold(), done: make(chan struct{})}
	m.ready = sync.NewCond(&m.mu)
	go func() {
		defer close(m.done)
		m.send(client, arrival)
	}()
	return m
}

// Write queues a copy of p. It never fails and never blocks on the stream, so that it can sit
// beside the app's connection in an io.MultiWriter.
func (m *mirrorCopy) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dropped || m.ended {
		return len(p), nil
	}
	if m.queued+len(p) > mirrorBacklog {
		m.log.Warn("mirror copy dropped: the client reads slower than the pod's traffic comes", "backlog", m.queued)
		m.drop()
		return len(p), nil
	}
	if !m.hold.tryTake(int64(len(p))) {
		m.log.Warn("mirror copy dropped: the copies of all connections hold the sidecar's budget for them", "budget", copyBudget, "backlog", m.queued)
		m.drop()
		return len(p), nil
	}
	m.queue = append(m.queue, append([]byte(nil), p...))
	m.queued += len(p)
	m.ready.Signal()
	return len(p), nil
}

// finish lets the copy end once what is queued is sent, and waits for that.
func (m *mirrorCopy) finish() {
	_ = m.Close()
	<-m.done
}

// Close lets the copy end once what is queued is sent, without waiting for that: a capture's
// one goroutine closes copies, and must not wait on a stream.
func (m *mirrorCopy) Close() error {
	m.mu.Lock()
	m.ended = true
	m.ready.Signal()
	m.mu.Unlock()
	return nil
}

// drop gives up the copy, ending a write in progress. Called with mu held.
func (m *mirrorCopy) drop() {
	m.dropped = true
	m.queue, m.queued = nil, 0
	m.hold.release()
	if m.stream != nil {
		m.stream.CancelWrite(0)
	}
	m.ready.Signal()
}

// send opens the stream and writes the queue to it until finish or drop.
func (m *mirrorCopy) send(client *quic.Conn, arrival wire.Incoming) {
	stream, err := openIncoming(client, arrival)
	if err != nil {
		m.log.Warn("mirror a connection to the client", "err", err)
		m.mu.Lock()
		m.drop()
		m.mu.Unlock()
		return
	}
	// The client's answers are not wanted; stopping our read tells it so.
	stream.CancelRead(0)
	m.mu.Lock()
	m.stream = stream
	if m.dropped {
		stream.CancelWrite(0)
	}
	m.mu.Unlock()
	for {
		m.mu.Lock()
		for len(m.queue) == 0 && !m.ended && !m.dropped {
			m.ready.Wait()
		}
		if m.dropped {
			m.mu.Unlock()
			return
		}
		batch := m.queue
		m.queue, m.queued = nil, 0
		end := m.ended && len(batch) == 0
		m.mu.Unlock()
		if end {
			_ = stream.Close()
			return
		}
		for _, b := range batch {
			_ = stream.SetWriteDeadline(time.Now().Add(mirrorStall))
			if _, err := stream.Write(b); err != nil {
				m.mu.Lock()
				m.drop()
				m.mu.Unlock()
				return
			}
			m.hold.give(int64(len(b))) // the stream has copied it
		}
	}
}
