//go:build linux

package layer

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dialings are the remote connects under way, by the program's socket. A signal for the
// connecting thread ends its wait as it ends the kernel's (ERESTARTSYS or EINTR), but, as in the
// kernel, the connection goes on: a restarted or repeated connect of the socket waits for the
// same dial and reports how it ended, rather than dialing again to find the socket connected
// by the first (EISCONN), or never connecting while signals keep coming.
type dialings struct {
	mu sync.Mutex
	m  map[uint64]*dialing
}

// dialing is one connect dialed from the pod. Its result, set before done closes, is what the
// connect returns: val, or errno when not 0. A parked one (see connectParked) has no result:
// its socket is really connecting meanwhile, so the kernel answers a connect made again.
type dialing struct {
	done   chan struct{}
	val    int64
	errno  unix.Errno
	parked bool
}

// unclaimedResult is how long the end of a dial waits for a connect of its socket to report it,
// after the one that started it was interrupted; then a later connect is the kernel's again.
const unclaimedResult = dialTimeout

// of is the dial under way or unreported for socket ino, if any.
func (d *dialings) of(ino uint64) (*dialing, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.m[ino]
	return g, ok
}

// start registers a dial for socket ino, parked or not, unless one is already there (another
// thread's connect started it first): started tells whether the caller is to dial.
func (d *dialings) start(ino uint64, parked bool) (g *dialing, started bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g, ok := d.m[ino]; ok {
		return g, false
	}
	if d.m == nil {
		d.m = map[uint64]*dialing{}
	}
	g = &dialing{done: make(chan struct{}), parked: parked}
	d.m[ino] = g
	return g, true
}

// finish records the result of socket ino's dial g, for whichever connect claims it.
func (d *dialings) finish(ino uint64, g *dialing, val int64, errno unix.Errno) {
	g.val, g.errno = val, errno
	close(g.done)
	time.AfterFunc(unclaimedResult, func() { d.claim(ino, g) })
}

// claim takes the result of a finished dial: the connect that reports it ends the dial's
// entry, so that the next connect of the socket is the kernel's (EISCONN).
func (d *dialings) claim(ino uint64, g *dialing) (int64, unix.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m[ino] == g {
		delete(d.m, ino)
	}
	return g.val, g.errno
}

// end removes socket ino's parked dial g, once the socket shows how it ended.
func (d *dialings) end(ino uint64, g *dialing) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m[ino] == g {
		delete(d.m, ino)
	}
}
