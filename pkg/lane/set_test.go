package lane

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A lone end goes out at once, and so does a reset; ends that follow within endDelay go out
// together, in one write.
func TestEndsGoOutTogether(t *testing.T) {
	var mu sync.Mutex
	var writes [][]wire.Message
	s := NewSet(func(ms ...wire.Message) error {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, ms)
		return nil
	}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.Run(ctx)
	written := func() [][]wire.Message {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(writes)
	}

	start := time.Now()
	s.sendEnd(1, 10, false)
	if got := written(); len(got) != 1 || !slices.Equal(got[0], []wire.Message{wire.LaneEnd{Lane: 1, Sent: 10}}) {
		t.Fatalf("a lone end: written %v; want it at once", got)
	}
	s.sendEnd(2, 20, false)
	s.sendEnd(3, 30, false)
	together := time.Since(start) < endDelay
	s.sendEnd(4, 0, true)
	if got := written(); len(got) != 2 || !slices.Equal(got[1], []wire.Message{wire.LaneEnd{Lane: 4, Reset: true}}) {
		t.Fatalf("a reset: written %v; want it at once", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(written()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the ends that waited were not written: %v", written())
		}
		time.Sleep(time.Millisecond)
	}
	want := []wire.Message{wire.LaneEnd{Lane: 2, Sent: 20}, wire.LaneEnd{Lane: 3, Sent: 30}}
	if got := written(); together && (len(got) != 3 || !slices.Equal(got[2], want)) {
		t.Errorf("ends within %s of the last: written %v; want %v in one write", endDelay, got, want)
	}
	time.Sleep(2 * endDelay)
	s.sendEnd(5, 50, false)
	if got := written(); !slices.Equal(got[len(got)-1], []wire.Message{wire.LaneEnd{Lane: 5, Sent: 50}}) {
		t.Errorf("an end %s after the last: written %v; want it at once", 2*endDelay, got)
	}
}

// The peer's end goes on the lanes stream and may overtake the lane's first message on its own
// connection: it waits for the lane, which then reads the peer's bytes to the end.
func TestEndBeforeItsLaneWaitsForIt(t *testing.T) {
	s := NewSet(func(...wire.Message) error { return nil }, nil)
	if err := s.Handle(wire.LaneEnd{Lane: 7, Sent: 5}); err != nil {
		t.Fatal(err)
	}
	l := laneWithPeer(t, s, 7, "hello")
	got := make(chan string, 1)
	go func() {
		b, err := io.ReadAll(l)
		if err != nil {
			b = append(b, " ("+err.Error()+")"...)
		}
		got <- string(b)
	}()
	select {
	case g := <-got:
		if g != "hello" {
			t.Errorf("read %q; want the peer's 5 bytes, then its end", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lane waits for an end that came before it was added")
	}
}

// The acknowledgement of a lane's last bytes goes out as the lanes' ends do, not within
// ackDelay: the peer's lane finishes, and frees its connection, only once it has it.
func TestFinalAcknowledgementIsNotDelayed(t *testing.T) {
	s := NewSet(func(...wire.Message) error { return nil }, nil) // Run is not started: kick shows a send due now
	l := laneWithPeer(t, s, 1, "hello")
	if _, err := io.ReadFull(l, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if len(s.kick) != 0 {
		t.Fatal("bytes whose end has not come are acknowledged at once; want within ackDelay")
	}
	if err := s.Handle(wire.LaneEnd{Lane: 1, Sent: 5}); err != nil {
		t.Fatal(err)
	}
	if len(s.kick) != 1 {
		t.Error("with the peer's end, its last bytes wait ackDelay for their acknowledgement")
	}
}

// laneWithPeer adds lane id to s on one end of a pipe, whose other end sends sent.
func laneWithPeer(t *testing.T, s *Set, id uint64, sent string) *Lane {
	t.Helper()
	l, err := s.AddID(id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := net.Pipe()
	t.Cleanup(func() { theirs.Close() })
	go func() { _, _ = theirs.Write([]byte(sent)) }()
	if err := l.Attach(ours, 0); err != nil {
		t.Fatal(err)
	}
	return l
}
