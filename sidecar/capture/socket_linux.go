package capture

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// Socket captures ports of this network namespace through one packet socket. The kernel
// allocates a packet socket's receive ring (8 MiB) outside the pod's memory cgroup, so no
// limit of the pod bounds it: a socket per port took 294 MiB of the node's memory for 32
// ports. One socket, opened with the first port and closed with the last, holds one ring
// whatever the number of ports, and its filter takes at most maxPorts of them.
type Socket struct {
	log *slog.Logger

	mu sync.Mutex
	// ports holds the captured ports, and those closing until the reader has ended their
	// copies.
	ports map[uint16]*Capture
	r     *reader // nil while no port is captured
}

// Capture is one port's share of a Socket.
type Capture struct {
	s       *Socket
	port    uint16
	open    func(Flow) io.WriteCloser
	closing bool          // under s.mu
	ended   chan struct{} // closed once the reader has ended the port's copies
}

// NewSocket returns a Socket that captures no port yet, and holds no packet socket until it
// does.
func NewSocket(log *slog.Logger) *Socket {
	return &Socket{log: log, ports: map[uint16]*Capture{}}
}

// Listen starts copying, to the writer open returns for each connection to port (nil skips
// the connection), what the connection's client sends: every connection this network
// namespace receives on port from the moment Listen returns, whatever its address (the pod's,
// or loopback from the pod's other containers). It needs CAP_NET_RAW. Writes must not block:
// they happen on the one goroutine that reads the packets of every port.
func (s *Socket) Listen(port uint16, open func(Flow) io.WriteCloser) (*Capture, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ports[port]; ok {
		return nil, fmt.Errorf("capture port %d: %w", port, syscall.EADDRINUSE)
	}
	if len(s.ports) >= maxPorts {
		return nil, fmt.Errorf("capture port %d: %d ports are captured already, as many as one packet filter takes", port, maxPorts)
	}
	c := &Capture{s: s, port: port, open: open, ended: make(chan struct{})}
	s.ports[port] = c
	var err error
	if s.r == nil {
		s.r, err = openReader(s.live(), s.read)
	} else {
		err = s.r.filter(s.live())
	}
	if err != nil {
		delete(s.ports, port)
		return nil, err
	}
	return c, nil
}

// Close stops copying the port's connections and ends their copies before it returns; the
// packet socket goes with the last port.
func (c *Capture) Close() error {
	s := c.s
	s.mu.Lock()
	if c.closing {
		s.mu.Unlock()
		return nil
	}
	c.closing = true
	r, live := s.r, s.live()
	if len(live) == 0 {
		// Every port left is closing: the reader's end ends their copies.
		s.r = nil
		clear(s.ports)
		s.mu.Unlock()
		return r.close()
	}
	err := r.filter(live)
	r.closing = append(r.closing, c)
	s.mu.Unlock()
	r.wake()
	select {
	case <-c.ended:
	case <-r.done:
	}
	return err
}

// live lists the ports captured and not closing. Called with mu held.
func (s *Socket) live() []uint16 {
	ports := make([]uint16, 0, len(s.ports))
	for port, c := range s.ports {
		if !c.closing {
			ports = append(ports, port)
		}
	}
	return ports
}

// copyFor is the writer of a new connection's copy, from its port's open; nil when the port
// is no longer captured (its packets were in the ring before the filter changed).
func (s *Socket) copyFor(f Flow) io.WriteCloser {
	s.mu.Lock()
	c := s.ports[f.Server.Port()]
	s.mu.Unlock()
	if c == nil || c.closing {
		return nil
	}
	return c.open(f)
}

// read is r's goroutine: it rebuilds the connections of every port from r's packets, and ends
// the copies of the ports that close.
func (s *Socket) read(r *reader) {
	a := newAssembler(s.copyFor)
	defer a.close()
	raw, err := r.file.SyscallConn()
	if err != nil {
		s.log.Error("packet capture", "err", err)
		return
	}
	for {
		woken, err := r.next(raw)
		if err != nil {
			if !r.stopped.Load() {
				s.log.Error("packet capture stopped", "err", err)
			}
			return
		}
		now := time.Now()
		if !woken {
			r.ring.drain(func(packet []byte) {
				if f, seq, flags, payload, ok := parseTCP(packet); ok {
					a.segment(f, seq, flags, payload, now)
				}
			})
		}
		s.mu.Lock()
		closing := r.closing
		r.closing = nil
		for _, c := range closing {
			if s.ports[c.port] == c {
				delete(s.ports, c.port)
			}
		}
		s.mu.Unlock()
		for _, c := range closing {
			a.endPort(c.port)
			close(c.ended)
		}
		a.expire(now)
	}
}
