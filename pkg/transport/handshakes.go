package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// Bounds on the handshakes a listener runs before their clients are authenticated. Anyone who
// reaches the port can start one with a single datagram, and each holds memory and goroutines
// until it fails (quic-go's handshake timeout, 5 s): 3,000 Initials in a second held 50 MiB and
// 3,800 goroutines. A real client authenticates within a few round trips, and there is one
// user, so a handful of handshakes at once is plenty.
type handshakeLimits struct {
	// retryAbove: with this many in progress, a new client first proves it receives at its
	// address (QUIC's Retry, one more round trip), so spoofed Initials cost a stateless reply.
	retryAbove int
	// total and perSource bound those in progress, from every source and from one address
	// (a port-forward session's virtual address on the stream path).
	total, perSource int
}

var defaultHandshakeLimits = handshakeLimits{retryAbove: 8, total: 64, perSource: 4}

var errTooManyHandshakes = errors.New("too many handshakes in progress")

// handshakeGuard counts a listener's handshakes in progress: from quic-go's first look at a
// client's Initial (Transport.ConnContext) until the TLS handshake authenticated the client
// (VerifyConnection succeeded), or the connection ended before that.
type handshakeGuard struct {
	limits handshakeLimits

	mu       sync.Mutex
	total    int
	bySource map[string]int
}

func newHandshakeGuard(limits handshakeLimits) *handshakeGuard {
	return &handshakeGuard{limits: limits, bySource: map[string]int{}}
}

// handshakeSlot is one handshake's place in the guard's counts; release gives it back, once.
type handshakeSlot struct {
	once    sync.Once
	release func()
}

type slotKey struct{}

// sourceOf is the address a client's handshakes count against: its IP on UDP (a client's
// ports are free to choose), the session's virtual address on the stream path.
func sourceOf(addr net.Addr) string {
	if udp, ok := addr.(*net.UDPAddr); ok {
		return udp.IP.String()
	}
	return addr.String()
}

// verifySource is Transport.VerifySourceAddress: a Retry for every new client while many
// handshakes are in progress.
func (g *handshakeGuard) verifySource(net.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total >= g.limits.retryAbove
}

// admit is Transport.ConnContext: it refuses a handshake past the limits (quic-go answers
// CONNECTION_REFUSED), and otherwise counts it until authenticated (see tlsConfig) or over.
func (g *handshakeGuard) admit(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	src := sourceOf(info.RemoteAddr)
	g.mu.Lock()
	if g.total >= g.limits.total || g.bySource[src] >= g.limits.perSource {
		g.mu.Unlock()
		return nil, errTooManyHandshakes
	}
	g.total++
	g.bySource[src]++
	g.mu.Unlock()
	slot := &handshakeSlot{release: func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.total--
		if g.bySource[src]--; g.bySource[src] == 0 {
			delete(g.bySource, src)
		}
	}}
	context.AfterFunc(ctx, slot.done) // the handshake failed, or the connection is over
	return context.WithValue(ctx, slotKey{}, slot), nil
}

func (s *handshakeSlot) done() { s.once.Do(s.release) }

// inProgress is how many handshakes the guard counts.
func (g *handshakeGuard) inProgress() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// tlsConfig is conf, with each connection's handshake slot given back once its client is
// authenticated: quic-go hands the context admit returned to crypto/tls, which shows it on the
// ClientHelloInfo.
func (g *handshakeGuard) tlsConfig(conf *tls.Config) *tls.Config {
	conf = conf.Clone()
	get := conf.GetConfigForClient
	conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		base := conf
		if get != nil {
			c, err := get(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				base = c
			}
		}
		slot, ok := hello.Context().Value(slotKey{}).(*handshakeSlot)
		if !ok {
			return nil, nil
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		verify := c.VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if verify != nil {
				if err := verify(cs); err != nil {
					return err
				}
			}
			slot.done()
			return nil
		}
		return c, nil
	}
	return conf
}
