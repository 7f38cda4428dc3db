package lane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// pair is two sets joined by an ordered message channel each way, as the QUIC lanes stream
// joins them, and a lane in each whose connections the test makes and breaks.
type pair struct {
	t          *testing.T
	a, b       *Set
	la, lb     *Lane
	mu         sync.Mutex
	conns      []net.Conn // the current connection's two ends
	reattaches int
}

// queue passes ms on to the other side's set.
func queue(to chan<- wire.Message, ms []wire.Message) {
	for _, m := range ms {
		to <- m
	}
}

func newPair(t *testing.T, opts Options) *pair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := &pair{t: t}
	toB, toA := make(chan wire.Message, 1024), make(chan wire.Message, 1024)
	p.a = NewSet(func(ms ...wire.Message) error { queue(toB, ms); return nil }, nil)
	p.b = NewSet(func(ms ...wire.Message) error { queue(toA, ms); return nil }, nil)
	deliver := func(s *Set, ch chan wire.Message) {
		for {
			select {
			case m := <-ch:
				if err := s.Handle(m); err != nil {
					t.Errorf("Handle(%T): %v", m, err)
				}
			case <-ctx.Done():
				return
			}
		}
	}
	go deliver(p.a, toA)
	go deliver(p.b, toB)
	go p.a.Run(ctx)
	go p.b.Run(ctx)

	var err error
	if p.lb, err = p.b.AddID(p.b.Reserve(), Options{MaxUnacked: opts.MaxUnacked, Recycle: opts.Recycle}); err != nil {
		t.Fatal(err)
	}
	opts.OnBreak = p.reattach
	if p.la, err = p.a.AddID(p.lb.ID(), opts); err != nil {
		t.Fatal(err)
	}
	ca, cb := tcpPair(t)
	p.setConns(ca, cb)
	if err := p.lb.Attach(cb, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.la.Attach(ca, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pair) setConns(ca, cb net.Conn) {
	p.mu.Lock()
	p.conns = []net.Conn{ca, cb}
	p.mu.Unlock()
}

// reattach is a's OnBreak: what the plugin does over a new connection's handshake.
func (p *pair) reattach(l *Lane) {
	ra, err := p.la.Suspend()
	if err != nil {
		return
	}
	rb, err := p.lb.Suspend()
	if err != nil {
		return
	}
	ca, cb := tcpPair(p.t)
	p.setConns(ca, cb)
	p.mu.Lock()
	p.reattaches++
	p.mu.Unlock()
	_ = p.lb.Attach(cb, ra)
	_ = p.la.Attach(ca, rb)
}

func (p *pair) reattached() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reattaches
}

// cut closes the current connection under the lanes, as a dropped port-forward does.
func (p *pair) cut(side int) {
	p.mu.Lock()
	c := p.conns[side]
	p.mu.Unlock()
	_ = c.Close()
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// send writes data in random pieces and ends the direction; sum returns the sha256 read.
func send(l *Lane, data []byte, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		k := min(len(data), 1+rng.IntN(256<<10))
		if _, err := l.Write(data[:k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return l.CloseWrite()
}

func sum(l *Lane) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, onlyReader{l})
	return [32]byte(h.Sum(nil)), n, err
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// transfer moves size bytes each way at once, calling during (if not nil) meanwhile, and
// checks that both arrive whole.
func (p *pair) transfer(size int, during func()) {
	t := p.t
	up, down := randomBytes(size, 1), randomBytes(size, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var gotUp, gotDown [32]byte
	wg.Add(4)
	go func() { defer wg.Done(); errs <- send(p.la, up, 3) }()
	go func() { defer wg.Done(); errs <- send(p.lb, down, 4) }()
	go func() {
		defer wg.Done()
		var err error
		gotUp, _, err = sum(p.lb)
		errs <- err
	}()
	go func() {
		defer wg.Done()
		var err error
		gotDown, _, err = sum(p.la)
		errs <- err
	}()
	if during != nil {
		during()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if gotUp != sha256.Sum256(up) || gotDown != sha256.Sum256(down) {
		t.Fatal("the bytes that arrived differ from those sent")
	}
}

func TestLaneCarriesBothWays(t *testing.T) {
	p := newPair(t, Options{})
	p.transfer(4<<20, nil)
	p.closeBoth()
}

// closeBoth closes both ends and waits for them to finish cleanly, within a few seconds.
func (p *pair) closeBoth() {
	p.t.Helper()
	_ = p.la.Close()
	_ = p.lb.Close()
	for _, l := range []*Lane{p.la, p.lb} {
		select {
		case <-l.Done():
		case <-time.After(5 * time.Second):
			p.t.Fatalf("lane %d did not finish after Close", l.ID())
		}
	}
	if p.a.Len() != 0 || p.b.Len() != 0 {
		p.t.Errorf("sets hold %d and %d lanes after both closed", p.a.Len(), p.b.Len())
	}
	for _, l := range []*Lane{p.la, p.lb} {
		if l.err != errClosed {
			p.t.Errorf("lane ended with %v, want a clean end", l.err)
		}
	}
}

func TestCleanEndLeavesTheConnectionForTheNextLane(t *testing.T) {
	p := newPair(t, Options{Recycle: true})
	p.transfer(4<<20, nil)
	p2 := newPair(t, Options{Recycle: true})
	// Reads blocked on the connections when the peers' ends come: woken by a deadline.
	read := make(chan string, 2)
	for _, l := range []*Lane{p2.la, p2.lb} {
		go func() {
			got, _ := io.ReadAll(onlyReader{l})
			read <- string(got)
		}()
	}
	for _, l := range []*Lane{p2.la, p2.lb} {
		if _, err := l.Write([]byte("last")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // read, and blocked again
	for _, l := range []*Lane{p2.la, p2.lb} {
		_ = l.CloseWrite()
	}
	for range 2 {
		if got := <-read; got != "last" {
			t.Fatalf("read %q, want \"last\"", got)
		}
	}
	p.closeBoth()
	p2.closeBoth()
	checkRecycled(t, p)
	checkRecycled(t, p2)
}

// checkRecycled checks that both lanes of p left their connection clean, for another lane.
func checkRecycled(t *testing.T, p *pair) {
	t.Helper()
	ca, cb := p.la.Recycled(), p.lb.Recycled()
	if ca == nil || cb == nil {
		t.Fatalf("recycled connections %v and %v, want both", ca, cb)
	}
	if p.la.Recycled() != nil {
		t.Error("Recycled returned the connection twice")
	}
	// Nothing of the old lane is left on the connection, and nothing of what comes next is
	// taken by it: the next bytes arrive as they were sent, and read deadlines are off.
	for _, c := range []net.Conn{ca, cb} {
		peer := cb
		if c == cb {
			peer = ca
		}
		if _, err := c.Write([]byte("next lane")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len("next lane"))
		if _, err := io.ReadFull(peer, got); err != nil || string(got) != "next lane" {
			t.Fatalf("read %q, %v on a recycled connection, want \"next lane\"", got, err)
		}
	}
}

func TestOnlyACleanEndRecycles(t *testing.T) {
	p := newPair(t, Options{Recycle: true})
	p.la.Abort()
	for _, l := range []*Lane{p.la, p.lb} {
		select {
		case <-l.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("lane %d did not end after a reset", l.ID())
		}
		if c := l.Recycled(); c != nil {
			t.Errorf("lane %d recycled its connection after a reset", l.ID())
		}
	}
}

func TestLaneSurvivesBrokenConnections(t *testing.T) {
	for _, side := range []int{0, 1} {
		p := newPair(t, Options{MaxUnacked: 256 << 10})
		const size = 16 << 20
		p.transfer(size, func() {
			for i := range 4 {
				// Each cut when another fifth has arrived, so that all come before the end.
				for p.lb.Received() < uint64((i+1)*size/5) {
					time.Sleep(100 * time.Microsecond)
				}
				p.cut(side)
				// The next cut is of the next connection.
				for deadline := time.Now().Add(5 * time.Second); p.reattached() <= i && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
		})
		p.closeBoth()
		if p.reattaches < 4 {
			t.Errorf("cut 4 times on side %d, re-attached %d times", side, p.reattaches)
		}
		st := p.a.Stats()
		t.Logf("side %d: %+v", side, st)
		if st.Resumed < 4 {
			t.Errorf("stats say %d resumes, want at least 4", st.Resumed)
		}
	}
}

func TestLaneWriteWaitsForAcknowledgements(t *testing.T) {
	p := newPair(t, Options{MaxUnacked: 64 << 10})
	// Nobody reads b: once a's writes pass what the connection buffers and MaxUnacked, Write
	// must block rather than keep everything.
	wrote := make(chan int, 1)
	go func() {
		n, _ := p.la.Write(make([]byte, 64<<20))
		wrote <- n
	}()
	select {
	case n := <-wrote:
		t.Fatalf("Write of 64 MiB with nobody reading returned %d", n)
	case <-time.After(300 * time.Millisecond):
	}
	p.la.mu.Lock()
	held := p.la.buf.size
	p.la.mu.Unlock()
	if held > 64<<10 {
		t.Errorf("the lane holds %d unacknowledged bytes, over MaxUnacked", held)
	}
	p.la.Abort()
	if n := <-wrote; n >= 64<<20 {
		t.Errorf("Write after Abort returned %d", n)
	}
}

func TestLaneResetReachesThePeer(t *testing.T) {
	p := newPair(t, Options{})
	p.la.Abort()
	_, err := p.lb.Read(make([]byte, 1))
	if !errors.Is(err, ErrReset) {
		t.Fatalf("Read after the peer's Abort = %v, want ErrReset", err)
	}
	select {
	case <-p.lb.Done():
	case <-time.After(time.Second):
		t.Fatal("the reset lane did not end")
	}
}

func TestLaneEndOfStreamIsNotABreak(t *testing.T) {
	p := newPair(t, Options{})
	if _, err := p.lb.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = p.lb.CloseWrite()
	got, err := io.ReadAll(onlyReader{p.la})
	if err != nil || !bytes.Equal(got, []byte("bye")) {
		t.Fatalf("read %q, %v; want \"bye\", nil", got, err)
	}
	if p.reattaches != 0 {
		t.Errorf("a clean end of stream re-attached the lane %d times", p.reattaches)
	}
	p.closeBoth()
}

func TestLanesShareABudget(t *testing.T) {
	const size = 96 << 10
	budget := NewBudget(size)
	var pairs []*pair
	for range 3 {
		pairs = append(pairs, newPair(t, Options{MaxUnacked: 64 << 10, Budget: budget}))
	}
	// Nobody reads: together the lanes may keep no more than the budget.
	for _, p := range pairs {
		go func() { _, _ = p.la.Write(make([]byte, 32<<20)) }()
	}
	time.Sleep(300 * time.Millisecond)
	held := 0
	for _, p := range pairs {
		p.la.mu.Lock()
		held += p.la.buf.size
		p.la.mu.Unlock()
	}
	if held > size {
		t.Errorf("lanes sharing a budget of %d hold %d bytes", size, held)
	}
	for _, p := range pairs {
		p.la.Abort()
	}
	for _, p := range pairs {
		<-p.la.Done()
	}
	budget.mu.Lock()
	free := budget.free
	budget.mu.Unlock()
	if free != size {
		t.Errorf("after every lane ended the budget has %d of %d free", free, size)
	}
}

func TestLaneWriteToSplicesAcrossConnections(t *testing.T) {
	p := newPair(t, Options{MaxUnacked: 256 << 10})
	data := randomBytes(16<<20, 5)
	// b's bytes go on to a TCP socket, as the sidecar relays a lane to its destination.
	out, in := tcpPair(t)
	got := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		_, _ = io.Copy(h, in)
		got <- [32]byte(h.Sum(nil))
	}()
	copied := make(chan error, 1)
	go func() {
		_, err := p.lb.WriteTo(out)
		out.(*net.TCPConn).CloseWrite()
		copied <- err
	}()
	sent := make(chan error, 1)
	go func() { sent <- send(p.la, data, 6) }()
	for i := range 2 {
		for p.lb.Received() < uint64((i+1)*len(data)/3) {
			time.Sleep(100 * time.Microsecond)
		}
		p.cut(0)
		for deadline := time.Now().Add(5 * time.Second); p.reattached() <= i && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := <-copied; err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if <-got != sha256.Sum256(data) {
		t.Fatal("the bytes WriteTo passed on differ from those sent")
	}
	_ = p.lb.CloseWrite()
	p.closeBoth()
}

// noDeadlines is a connection that, like a port-forward stream, cannot time a Read out.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetReadDeadline(time.Time) error { return errors.ErrUnsupported }

func TestLanePeerEndReachesAReaderWithoutDeadlines(t *testing.T) {
	p := newPair(t, Options{})
	// Give a a connection without deadlines, as the plugin's port-forward streams are.
	ra, _ := p.la.Suspend()
	rb, _ := p.lb.Suspend()
	ca, cb := tcpPair(t)
	p.setConns(ca, cb)
	if err := p.lb.Attach(cb, ra); err != nil {
		t.Fatal(err)
	}
	if err := p.la.Attach(noDeadlines{ca}, rb); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(onlyReader{p.la})
		read <- got
	}()
	time.Sleep(50 * time.Millisecond) // a's Read is blocked on its connection
	if _, err := p.lb.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = p.lb.CloseWrite()
	select {
	case got := <-read:
		if string(got) != "bye" {
			t.Fatalf("read %q, want \"bye\"", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's end did not reach a Read blocked on a connection without deadlines")
	}
	// a's own direction goes on, on the connection it was re-attached to.
	if _, err := p.la.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	_ = p.la.CloseWrite()
	if got, err := io.ReadAll(onlyReader{p.lb}); err != nil || string(got) != "more" {
		t.Fatalf("the other direction after the wake-up: %q, %v", got, err)
	}
	p.closeBoth()
}

func TestClosedLaneResetsAPeerThatGoesOnSending(t *testing.T) {
	p := newPair(t, Options{})
	stop := make(chan struct{})
	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				sendErr <- nil
				return
			default:
			}
			if _, err := p.lb.Write(make([]byte, 32<<10)); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	_ = p.la.Close()
	select {
	case err := <-sendErr:
		if !errors.Is(err, ErrReset) {
			t.Errorf("the peer's Write after its lane was closed: %v, want ErrReset", err)
		}
	case <-time.After(closeGrace + 3*time.Second):
		close(stop)
		t.Fatal("a closed lane did not stop a peer that goes on sending")
	}
	<-p.la.Done()
}
