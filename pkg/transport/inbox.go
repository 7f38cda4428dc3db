package transport

import (
	"net"
	"os"
	"sync"

	"github.com/remocal/kubectl-remocal/internal/deadline"
)

const (
	// inboxLen is how many datagrams may wait for ReadFrom. When it is full, stream readers stop
	// reading, and the byte stream's own flow control slows the sender down instead of losing packets.
	inboxLen = 512
	// packetBufLen fits every packet quic-go sends (streamPacketSize); rarer, longer datagrams get a
	// buffer of their own.
	packetBufLen = 2048
)

// inPacket is one received datagram waiting for ReadFrom.
type inPacket struct {
	buf  *[]byte // from the pool, or nil
	data []byte
	from net.Addr
}

// inbox is the receive side of a virtual packet connection: datagrams read from byte streams wait
// here until quic-go calls ReadFrom.
type inbox struct {
	packets  chan inPacket
	closed   <-chan struct{}
	deadline *deadline.Deadline
	pool     sync.Pool
}

func newInbox(closed <-chan struct{}) *inbox {
	return &inbox{
		packets:  make(chan inPacket, inboxLen),
		closed:   closed,
		deadline: deadline.New(),
		pool:     sync.Pool{New: func() any { b := make([]byte, packetBufLen); return &b }},
	}
}

// put queues a copy of data, waiting while the inbox is full. It reports false if stop or the
// connection closed first.
func (in *inbox) put(data []byte, from net.Addr, stop <-chan struct{}) bool {
	p := inPacket{from: from}
	if len(data) <= packetBufLen {
		p.buf = in.pool.Get().(*[]byte)
		p.data = (*p.buf)[:copy(*p.buf, data)]
	} else {
		p.data = append([]byte(nil), data...)
	}
	select {
	case in.packets <- p:
		return true
	case <-stop:
	case <-in.closed:
	}
	in.release(p)
	return false
}

func (in *inbox) release(p inPacket) {
	if p.buf != nil {
		in.pool.Put(p.buf)
	}
}

// readFrom is net.PacketConn.ReadFrom: a datagram longer than b is truncated, as UDP does.
func (in *inbox) readFrom(b []byte) (int, net.Addr, error) {
	timeout := in.deadline.Wait()
	// An expired deadline wins over waiting packets, as with sockets: quic-go relies on it to stop
	// its reader promptly when closing a transport.
	if deadline.IsClosed(timeout) {
		return 0, nil, os.ErrDeadlineExceeded
	}
	select {
	case p := <-in.packets:
		n := copy(b, p.data)
		in.release(p)
		return n, p.from, nil
	case <-in.closed:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}
