package httpfilter

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"
)

// bufferSize is the size of each connection's read and write buffers.
const bufferSize = 16 << 10

// peer is a connection with its buffers. Bytes read ahead (a pipelined request, the first
// bytes after a protocol switch) live in r and must be consumed from there, never from conn.
type peer struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func newPeer(conn net.Conn) *peer {
	return &peer{conn: conn, r: bufio.NewReaderSize(conn, bufferSize), w: bufio.NewWriterSize(conn, bufferSize)}
}

// connSet holds the connections of one Serve call so they can all be closed when its context
// ends or it returns; closing them is what unblocks the goroutines reading or writing them.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

// add adds conn, or closes it and returns false if the set is already closed.
func (s *connSet) add(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		conn.Close()
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[conn] = struct{}{}
	return true
}

// drop closes conn and forgets it.
func (s *connSet) drop(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	conn.Close()
}

// closeAll closes every connection, and those added later.
func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for conn := range s.conns {
		conn.Close()
	}
	clear(s.conns)
}

// Bounds of lingerClose.
const (
	lingerTimeout = time.Second
	lingerBytes   = 256 << 10
)

// lingerClose half-closes the connection and discards what the client still sends, for a
// bounded time and amount, before the caller closes it. Closing a socket with unread input
// makes the kernel send a reset, which can destroy the error response we just wrote before
// the client reads it.
func lingerClose(p *peer) {
	hc, ok := p.conn.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		return
	}
	if p.conn.SetReadDeadline(time.Now().Add(lingerTimeout)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, p.r, lingerBytes)
}
