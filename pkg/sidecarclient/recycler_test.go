package sidecarclient

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pipeConn returns one end of a pipe, and a function telling whether that end was closed.
func pipeConn(t *testing.T) (net.Conn, func() bool) {
	t.Helper()
	ours, theirs := net.Pipe()
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return ours, func() bool {
		_ = ours.SetWriteDeadline(time.Now().Add(time.Millisecond))
		_, err := ours.Write([]byte{0})
		return errors.Is(err, io.ErrClosedPipe)
	}
}

// A connection is free once its lane ended here and the sidecar said so of its end, in
// either order; not before.
func TestRecyclerFreesOnBothWords(t *testing.T) {
	r := newRecycler(time.Minute, time.Minute)
	defer r.close()
	a, _ := pipeConn(t)
	b, _ := pipeConn(t)

	r.ended(1, a)
	if _, ok := r.take(); ok {
		t.Fatal("a connection was free before the sidecar said so")
	}
	r.sidecarFreed(1)
	r.sidecarFreed(2)
	if _, ok := r.take(); !ok {
		t.Fatal("ended, then freed: not free")
	}
	r.ended(2, b)
	if c, ok := r.take(); !ok || c != b {
		t.Fatalf("freed, then ended: take() = %v, %v; want the connection", c, ok)
	}
	if _, ok := r.take(); ok {
		t.Fatal("a connection was taken twice")
	}
}

// A free connection not taken within its maximum age is closed, with no other call to wake
// the recycler; so are the kept ones when it closes.
func TestRecyclerClosesWhatItKeeps(t *testing.T) {
	r := newRecycler(20*time.Millisecond, time.Minute)
	idle, idleClosed := pipeConn(t)
	r.ended(1, idle)
	r.sidecarFreed(1)
	for deadline := time.Now().Add(5 * time.Second); !idleClosed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a free connection is still open long past its maximum age")
		}
	}
	if _, ok := r.take(); ok {
		t.Fatal("an expired connection was taken")
	}

	waiting, waitingClosed := pipeConn(t)
	r.ended(2, waiting)
	r.close()
	if !waitingClosed() {
		t.Error("close left a kept connection open")
	}
	late, lateClosed := pipeConn(t)
	r.ended(3, late)
	if !lateClosed() {
		t.Error("a connection that ended after close was kept")
	}
}

// In a burst of connections most of the sidecar's words come before their lanes end here:
// each still frees its connection when the lane ends, none is kept waiting.
func TestRecyclerTakesEveryWordOfABurst(t *testing.T) {
	r := newRecycler(time.Minute, time.Minute)
	defer r.close()
	const lanes = 1000
	for id := range uint64(lanes) {
		r.sidecarFreed(id + 1)
	}
	for id := range uint64(lanes) {
		c, _ := pipeConn(t)
		r.ended(id+1, c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.unfreed) != 0 || len(r.freedFirst) != 0 || len(r.free) != maxRecycled {
		t.Errorf("after %d words and then their lanes' ends: %d connections wait for a word, %d words for a lane, %d free; want 0, 0 and %d",
			lanes, len(r.unfreed), len(r.freedFirst), len(r.free), maxRecycled)
	}
}

// A free connection is closed at its maximum age even when the timer was armed for later, for
// a lane that waits for its word.
func TestRecyclerMovesItsTimerEarlier(t *testing.T) {
	r := newRecycler(20*time.Millisecond, time.Minute)
	defer r.close()
	waiting, _ := pipeConn(t)
	r.ended(1, waiting) // arms the timer for half a minute
	free, freeClosed := pipeConn(t)
	r.sidecarFreed(2)
	r.ended(2, free)
	for deadline := time.Now().Add(5 * time.Second); !freeClosed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a free connection is still open long past its maximum age")
		}
	}
}

// A connection whose lane ended here but whose word never comes (a lane reset meanwhile, a
// word dropped) is closed in time, with no other call to wake the recycler: the sidecar waits
// on its end for the next lane until then.
func TestRecyclerClosesAConnectionWhoseWordNeverCame(t *testing.T) {
	r := newRecycler(time.Minute, 20*time.Millisecond)
	defer r.close()
	r.sidecarFreed(7) // another lane's word, which waits as long
	conn, closed := pipeConn(t)
	r.ended(1, conn)
	for deadline := time.Now().Add(5 * time.Second); !closed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection of a lane whose word never came is still open")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.unfreed) != 0 || len(r.freedFirst) != 0 {
		t.Errorf("%d connections and %d words still kept, want none", len(r.unfreed), len(r.freedFirst))
	}
}
