//go:build linux

package layer

import (
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// socketTable remembers, per socket of the program, where it really goes: getpeername reports
// that instead of the relay's address, and recvfrom reports a datagram's real source. Sockets
// are keyed by their inode, which names the socket itself whatever descriptor, process or dup
// the program uses. An entry goes when its relay ends, which the socket's close causes.
type socketTable struct {
	mu    sync.Mutex
	peers map[uint64]netip.AddrPort
	// sources maps, per unconnected UDP socket, the loopback address that delivers a remote
	// destination's replies to that destination.
	sources map[uint64]map[netip.AddrPort]netip.AddrPort
}

func newSocketTable() *socketTable {
	return &socketTable{peers: map[uint64]netip.AddrPort{}, sources: map[uint64]map[netip.AddrPort]netip.AddrPort{}}
}

func (t *socketTable) setPeer(ino uint64, peer netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peers[ino] = peer
}

func (t *socketTable) peer(ino uint64) (netip.AddrPort, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[ino]
	return p, ok
}

// empty reports whether no socket is redirected.
func (t *socketTable) empty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.peers) == 0
}

func (t *socketTable) forget(ino uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, ino)
	delete(t.sources, ino)
}

func (t *socketTable) setSource(ino uint64, relay, remote netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.sources[ino]
	if m == nil {
		m = map[netip.AddrPort]netip.AddrPort{}
		t.sources[ino] = m
	}
	m[relay] = remote
}

func (t *socketTable) forgetSource(ino uint64, relay netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sources[ino], relay)
	if len(t.sources[ino]) == 0 {
		delete(t.sources, ino)
	}
}

// hasSources reports whether the socket sent datagrams through the pod.
func (t *socketTable) hasSources(ino uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sources[ino]) > 0
}

func (t *socketTable) source(ino uint64, from netip.AddrPort) (netip.AddrPort, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	remote, ok := t.sources[ino][from]
	return remote, ok
}

// socketInfo describes a duplicated socket descriptor.
type socketInfo struct {
	ino    uint64
	family uint16
	typ    int
}

func inspectSocket(fd int) (socketInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return socketInfo{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return socketInfo{}, unix.ENOTSOCK
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return socketInfo{}, err
	}
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return socketInfo{}, err
	}
	return socketInfo{ino: st.Ino, family: uint16(dom), typ: typ}, nil
}
