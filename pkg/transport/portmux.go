package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/remocal/kubectl-remocal/internal/ratelog"
)

// LaneMagic opens a lane connection, as streamMagic opens a packet stream.
const LaneMagic = "RMCL"

// LaneALPN names the protocol of a lane over TLS, the direct path's lanes.
const LaneALPN = "remocal-lane/1"

// maxSorting bounds the connections whose first bytes are awaited at once. Every process of the
// pod can connect, and one that connects and says nothing would hold its place until
// sortTimeout: past the bound, the oldest gives way. The plugin says what its connections are
// at once, but opens hundreds together when a program does.
const maxSorting = 512

// sortTimeout bounds how long a new connection may take to say what it is (TLS included).
const sortTimeout = 10 * time.Second

// PortMux serves the sidecar's TCP port to two kinds of connections. On loopback, where the
// kubelet's port-forward arrives, a connection's first four bytes say what it is: a QUIC packet
// stream (for the StreamPacketServer on [PortMux.Streams]) or a plain lane. On the pod's other
// addresses, which other pods reach, only lanes inside TLS with the pinned keys are served.
type PortMux struct {
	ln      net.Listener
	laneTLS *tls.Config
	log     *slog.Logger
	streams *connQueue
	lanes   *connQueue
	wg      sync.WaitGroup

	mu sync.Mutex
	// sorting holds the connections being sorted, oldest first: those to the pod's other
	// addresses (0), which any pod may make, apart from those on loopback (1), where the
	// plugin's port-forward arrives, so that a flood of the one never pushes out the other.
	sorting [2][]net.Conn
	// refusals spaces the warnings about refused connections, which a flood would otherwise
	// repeat for each one.
	refusals *ratelog.Limiter
}

// NewPortMux sorts the connections ln accepts until Close. laneTLS (LaneServerTLS) serves the
// lanes that arrive at non-loopback addresses; nil refuses them.
func NewPortMux(ln net.Listener, laneTLS *tls.Config, log *slog.Logger) *PortMux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &PortMux{
		ln: ln, laneTLS: laneTLS, log: log,
		streams: newConnQueue(ln.Addr()), lanes: newConnQueue(ln.Addr()),
		refusals: ratelog.New(warnEvery),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// Streams is a listener of the packet streams, for NewStreamPacketServer.
func (m *PortMux) Streams() net.Listener { return m.streams }

// AcceptLane returns the next lane connection, after its magic (and TLS, where it came over
// TLS), or an error once the mux is closed.
func (m *PortMux) AcceptLane(ctx context.Context) (net.Conn, error) { return m.lanes.accept(ctx) }

// Close stops accepting and closes the connections not yet taken.
func (m *PortMux) Close() error {
	err := m.ln.Close()
	m.streams.Close()
	m.lanes.Close()
	m.wg.Wait()
	return err
}

func (m *PortMux) acceptLoop() {
	defer m.wg.Done()
	var delay time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Running out of file descriptors passes: wait and go on serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.log.Warn("accept on the sidecar's port", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		m.startSorting(conn)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer m.doneSorting(conn)
			m.sort(conn)
		}()
	}
}

// startSorting counts conn among those being sorted, and closes the oldest of them on its side
// (loopback or not) when there are too many.
func (m *PortMux) startSorting(conn net.Conn) {
	side := sortingSide(conn)
	m.mu.Lock()
	var oldest net.Conn
	if len(m.sorting[side]) >= maxSorting {
		oldest = m.sorting[side][0]
		m.sorting[side] = m.sorting[side][1:]
	}
	m.sorting[side] = append(m.sorting[side], conn)
	m.mu.Unlock()
	if oldest != nil {
		m.warn("connection closed: too many connections saying nothing", oldest, nil)
		oldest.Close()
	}
}

func (m *PortMux) doneSorting(conn net.Conn) {
	side := sortingSide(conn)
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.Index(m.sorting[side], conn); i >= 0 {
		m.sorting[side] = slices.Delete(m.sorting[side], i, i+1)
	}
}

func sortingSide(conn net.Conn) int {
	if isLoopback(conn.LocalAddr()) {
		return 1
	}
	return 0
}

// warnEvery spaces the warnings about refused connections.
const warnEvery = 10 * time.Second

// warn logs msg about conn, at most every warnEvery, with the count of those not logged since.
func (m *PortMux) warn(msg string, conn net.Conn, err error) {
	skipped, ok := m.refusals.Allow()
	if !ok {
		return
	}
	args := []any{"remote", conn.RemoteAddr().String(), "alsoRefusedSinceLastWarning", skipped}
	if err != nil {
		args = append(args, "reason", err.Error())
	}
	m.log.Warn(msg, args...)
}

// sort reads what conn is and queues it where it goes, or closes it.
func (m *PortMux) sort(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(sortTimeout))
	loopback := isLoopback(conn.LocalAddr())
	var c net.Conn = conn
	if !loopback {
		if m.laneTLS == nil {
			conn.Close()
			return
		}
		t := tls.Server(conn, m.laneTLS)
		if err := t.Handshake(); err != nil {
			m.warn("lane connection refused", conn, err)
			conn.Close()
			return
		}
		c = t
	}
	var magic [4]byte
	if _, err := io.ReadFull(c, magic[:]); err != nil {
		c.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	switch {
	case string(magic[:]) == LaneMagic:
		m.lanes.put(c)
	case string(magic[:]) == streamMagic && loopback:
		m.streams.put(&replayConn{Conn: c, head: magic[:]})
	default:
		m.warn("connection refused: not a lane or packet stream", conn, nil)
		c.Close()
	}
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// replayConn gives back the bytes read to sort it before the rest.
type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connQueue is a net.Listener of the connections put into it.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// put hands conn to the next Accept, or closes it once the queue is closed.
func (q *connQueue) put(conn net.Conn) {
	select {
	case q.ch <- conn:
	case <-q.closed:
		conn.Close()
	}
}

func (q *connQueue) accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}
func (q *connQueue) Addr() net.Addr { return q.addr }
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

// CloseWrite half-closes the connection underneath, as the packet stream's end does.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
