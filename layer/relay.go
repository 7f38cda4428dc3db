//go:build linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pairTimeout bounds how long one end of a relayed connection waits for the other: the
// program's socket reaching the relay, or the supervisor registering it.
const pairTimeout = 10 * time.Second

// tcpRelay accepts the program's redirected sockets on loopback and joins each to the pod
// connection dialed for it. Sockets are told apart by their local address, which the relay
// sees as the accepted connection's remote address.
type tcpRelay struct {
	log *slog.Logger
	v4  *net.TCPListener
	v6  *net.TCPListener // nil where the machine has no IPv6 loopback

	mu      sync.Mutex
	waiting map[netip.AddrPort]*halfPair
	// active are the relays running, by their program's end: close ends them, since a pod's
	// side that never ends (a lane whose sidecar went silent) would keep its relay, and the
	// supervisor's Close, waiting forever.
	active  map[*net.TCPConn]Conn
	stopped bool // close was called: no relay starts, so that wg.Add never races serve's Wait
	wg      sync.WaitGroup
}

// halfPair is whichever end arrived first.
type halfPair struct {
	pod    Conn
	onDone func()
	local  *net.TCPConn
	expiry *time.Timer
}

func newTCPRelay(log *slog.Logger) (*tcpRelay, error) {
	v4, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("layer relay: %w", err)
	}
	r := &tcpRelay{log: log, v4: v4, waiting: map[netip.AddrPort]*halfPair{}, active: map[*net.TCPConn]Conn{}}
	if v6, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback}); err == nil {
		r.v6 = v6
	}
	return r, nil
}

func (r *tcpRelay) serve(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ln := range []*net.TCPListener{r.v4, r.v6} {
		if ln == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := ln.AcceptTCP()
				if err != nil {
					return
				}
				r.arrivedLocal(conn)
			}
		}()
	}
	wg.Wait()
	r.wg.Wait()
}

func (r *tcpRelay) close() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.v4.Close()
	if r.v6 != nil {
		r.v6.Close()
	}
	r.mu.Lock()
	for key, h := range r.waiting {
		h.expiry.Stop()
		h.closeAll()
		delete(r.waiting, key)
	}
	for local, pod := range r.active {
		local.Close()
		pod.Close()
	}
	r.mu.Unlock()
}

// attach connects the program's socket fd to the relay and pairs it with pod. It returns what
// the program's connect returns: 0, or EINPROGRESS for a non-blocking socket.
func (r *tcpRelay) attach(fd int, info socketInfo, pod Conn, onDone func()) (int64, error) {
	target := r.addrFor(info.family)
	err := unix.Connect(fd, unixSockaddr(target, info.family))
	var result int64
	switch {
	case err == nil:
	case errors.Is(err, unix.EINPROGRESS):
		result = -int64(unix.EINPROGRESS)
	default:
		return 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	local, ok := sockaddrOf(sa)
	if !ok {
		return 0, fmt.Errorf("socket has no inet address")
	}
	r.arrivedPod(key(local), pod, onDone)
	return result, nil
}

// addrFor is the relay address a socket of family connects to: an IPv6 socket takes the IPv6
// listener, or the IPv4 one v4-mapped.
func (r *tcpRelay) addrFor(fam uint16) netip.AddrPort {
	v4 := r.v4.Addr().(*net.TCPAddr).AddrPort()
	if fam != unix.AF_INET6 {
		return v4
	}
	if r.v6 != nil {
		return r.v6.Addr().(*net.TCPAddr).AddrPort()
	}
	return netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), v4.Port())
}

func key(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

func (r *tcpRelay) arrivedPod(k netip.AddrPort, pod Conn, onDone func()) {
	r.mu.Lock()
	if h, ok := r.waiting[k]; ok && h.local != nil {
		delete(r.waiting, k)
		h.expiry.Stop()
		r.mu.Unlock()
		r.start(h.local, pod, onDone)
		return
	}
	r.waiting[k] = r.expiring(k, &halfPair{pod: pod, onDone: onDone})
	r.mu.Unlock()
}

func (r *tcpRelay) arrivedLocal(local *net.TCPConn) {
	k := key(local.RemoteAddr().(*net.TCPAddr).AddrPort())
	r.mu.Lock()
	if h, ok := r.waiting[k]; ok && h.pod != nil {
		delete(r.waiting, k)
		h.expiry.Stop()
		r.mu.Unlock()
		r.start(local, h.pod, h.onDone)
		return
	}
	r.waiting[k] = r.expiring(k, &halfPair{local: local})
	r.mu.Unlock()
}

// expiring arms h's cleanup for when its other end never comes. Called with mu held.
func (r *tcpRelay) expiring(k netip.AddrPort, h *halfPair) *halfPair {
	h.expiry = time.AfterFunc(pairTimeout, func() {
		r.mu.Lock()
		if r.waiting[k] == h {
			delete(r.waiting, k)
		} else {
			h = nil
		}
		r.mu.Unlock()
		if h != nil {
			r.log.Debug("relay end never paired", "local", k)
			h.closeAll()
		}
	})
	return h
}

func (h *halfPair) closeAll() {
	if h.pod != nil {
		h.pod.Close()
		if h.onDone != nil {
			h.onDone()
		}
	}
	if h.local != nil {
		h.local.Close()
	}
}

// start copies both ways, passing each end of stream on as a half-close, and a reset or loss
// of the pod's side on to the program as a reset.
func (r *tcpRelay) start(local *net.TCPConn, pod Conn, onDone func()) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		local.Close()
		pod.Close()
		onDone()
		return
	}
	r.wg.Add(1)
	r.active[local] = pod
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer onDone()
		defer func() {
			r.mu.Lock()
			delete(r.active, local)
			r.mu.Unlock()
		}()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(pod, local)
			_ = pod.CloseWrite()
		}()
		if _, err := io.Copy(local, pod); err != nil {
			// The pod's side was reset or lost: so is the program's, rather than ended
			// as if all had arrived.
			_ = local.SetLinger(0)
			local.Close()
		} else {
			_ = local.CloseWrite()
		}
		<-done
		local.Close()
		pod.Close()
	}()
}
