package attach

import (
	"encoding/binary"
	"net"
	"sync"
)

// frameConn is the plugin's end of a port-forward tunnel, which sends each SPDY frame in one
// Write. The SPDY framer writes a frame field by field (a data frame in three writes, a control
// frame in more), and through the WebSocket tunnel each write becomes a message of its own,
// which the API server, the kubelet and containerd each carry as a read and a write: the
// lanes' and the QUIC link's small frames (a Dial, a QUIC packet, a stream's opening) cost
// three times over at every hop, in CPU and in latency. So the pieces of a frame are kept
// until it is whole, and then go out together.
//
// A frame too large to be worth copying (a lane's bulk bytes) goes out in the pieces it came
// in: a small header, then its data.
type frameConn struct {
	net.Conn

	mu     sync.Mutex
	buf    []byte // written, not yet sent: the start of the frame in progress
	framer framing
}

// maxHeld bounds what is kept back for the rest of a frame.
const maxHeld = 16 << 10

func (c *frameConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	whole := c.framer.advance(p)
	if len(c.buf)+len(p) > maxHeld {
		// Too much to copy: what is kept back, then p, as they are.
		if err := c.send(); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if whole && len(c.buf) == 0 {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if whole {
		if err := c.send(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// send writes what is kept back.
func (c *frameConn) send() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// framing follows where SPDY frames begin and end in the bytes written. Every frame, control
// or data, starts with 8 bytes whose last 24 bits are the length of what follows.
type framing struct {
	header [8]byte
	got    int // bytes of the header seen
	body   int // bytes of the frame's body still to come, once its header is whole
}

// advance takes in p and tells whether it ends on a frame's end.
func (f *framing) advance(p []byte) bool {
	for len(p) > 0 {
		if f.body > 0 {
			n := min(f.body, len(p))
			f.body -= n
			p = p[n:]
			continue
		}
		n := copy(f.header[f.got:], p)
		f.got += n
		p = p[n:]
		if f.got == len(f.header) {
			f.got = 0
			f.body = int(binary.BigEndian.Uint32(f.header[4:]) & 0xffffff)
		}
	}
	return f.got == 0 && f.body == 0
}
