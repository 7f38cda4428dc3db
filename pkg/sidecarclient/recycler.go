package sidecarclient

import (
	"net"
	"slices"
	"sync"
	"time"
)

const (
	// maxRecycled bounds the free lane connections kept for the next lanes: as many as the
	// lanes kept ready and those being opened, which is what new lanes draw on.
	maxRecycled = readyLanes + openers
	// recycledMaxAge is how long a free lane connection is kept unused. The lanes kept ready
	// take free connections as they are replaced, within moments; one left over when a burst
	// of connections ends would otherwise hold a descriptor here and in the sidecar (which
	// waits 30 s for the next lane on it, sidecar's freedWait) for nothing.
	recycledMaxAge = time.Second
	// maxUnfreed bounds the lanes ended here whose connection the sidecar has not yet said
	// free, and the sidecar's words that came before the lane ended here; unfreedMaxAge is how
	// long either is kept. The two halves come within a round trip of each other, or never
	// (an older sidecar, a lane reset meanwhile).
	maxUnfreed    = 256
	unfreedMaxAge = 10 * time.Second
)

// recycler keeps the connections of lanes that ended cleanly (lane.Options.Recycle) for the
// next lanes, which then cost no new port-forward stream or TLS handshake. A connection is free
// once both ends are done with it: its lane ended here, and the sidecar said so of its own end
// (wire.LaneFree), in either order; before that, the sidecar could still read the next lane's
// LaneOpen as the old lane's bytes.
type recycler struct {
	maxAge time.Duration // recycledMaxAge, but in tests

	mu sync.Mutex
	// unfreed holds the connections of lanes ended here, by lane, until the sidecar's word.
	unfreed map[uint64]heldConn
	// freedFirst holds when the sidecar's word came, by lane, for lanes not yet ended here.
	freedFirst map[uint64]time.Time
	free       []heldConn // oldest first
	closed     bool
	// swept is when unfreed and freedFirst were last looked through for what expired.
	swept time.Time
	// expiry closes the free connections as they pass maxAge, while there are any.
	expiry *time.Timer
}

// heldConn is a lane connection kept since a time.
type heldConn struct {
	conn  net.Conn
	since time.Time
}

func newRecycler(maxAge time.Duration) *recycler {
	return &recycler{maxAge: maxAge, unfreed: map[uint64]heldConn{}, freedFirst: map[uint64]time.Time{}}
}

// ended keeps conn, the connection of lane id, which ended cleanly here.
func (r *recycler) ended(id uint64, conn net.Conn) {
	now := time.Now()
	r.mu.Lock()
	drop := r.expireLocked(now)
	switch _, freed := r.freedFirst[id]; {
	case r.closed || len(r.unfreed) >= maxUnfreed && !freed:
		drop = append(drop, conn)
	case freed:
		delete(r.freedFirst, id)
		drop = append(drop, r.addFreeLocked(heldConn{conn, now})...)
	default:
		r.unfreed[id] = heldConn{conn, now}
	}
	r.mu.Unlock()
	closeAll(drop)
}

// sidecarFreed takes the sidecar's word that it is done with lane id's connection.
func (r *recycler) sidecarFreed(id uint64) {
	now := time.Now()
	r.mu.Lock()
	drop := r.expireLocked(now)
	if held, ok := r.unfreed[id]; ok {
		delete(r.unfreed, id)
		drop = append(drop, r.addFreeLocked(heldConn{held.conn, now})...)
	} else if !r.closed && len(r.freedFirst) < maxUnfreed {
		r.freedFirst[id] = now
	}
	r.mu.Unlock()
	closeAll(drop)
}

// take returns the free connection freed last, if any.
func (r *recycler) take() (net.Conn, bool) {
	now := time.Now()
	r.mu.Lock()
	drop := r.expireLocked(now)
	var conn net.Conn
	if n := len(r.free); n > 0 {
		conn = r.free[n-1].conn
		r.free = r.free[:n-1]
	}
	r.mu.Unlock()
	closeAll(drop)
	return conn, conn != nil
}

// close closes every connection kept, and those that come later: the session ended.
func (r *recycler) close() {
	r.mu.Lock()
	r.closed = true
	var drop []net.Conn
	for _, h := range r.unfreed {
		drop = append(drop, h.conn)
	}
	for _, h := range r.free {
		drop = append(drop, h.conn)
	}
	r.unfreed, r.freedFirst, r.free = map[uint64]heldConn{}, map[uint64]time.Time{}, nil
	if r.expiry != nil {
		r.expiry.Stop()
	}
	r.mu.Unlock()
	closeAll(drop)
}

// addFreeLocked adds h to the free connections and returns those to close: h itself once
// closed, else the oldest beyond maxRecycled.
func (r *recycler) addFreeLocked(h heldConn) []net.Conn {
	if r.closed {
		return []net.Conn{h.conn}
	}
	r.free = append(r.free, h)
	var drop []net.Conn
	for len(r.free) > maxRecycled {
		drop = append(drop, r.free[0].conn)
		r.free = r.free[1:]
	}
	r.expireLaterLocked()
	return drop
}

// expireLaterLocked arms the timer that closes the oldest free connection once it passes
// maxAge, if there is one and the timer is not armed.
func (r *recycler) expireLaterLocked() {
	if r.expiry != nil || len(r.free) == 0 {
		return
	}
	r.expiry = time.AfterFunc(time.Until(r.free[0].since.Add(r.maxAge)), func() {
		r.mu.Lock()
		r.expiry = nil
		drop := r.expireLocked(time.Now())
		if !r.closed {
			r.expireLaterLocked()
		}
		r.mu.Unlock()
		closeAll(drop)
	})
}

// expireLocked forgets what was kept too long, and returns the connections to close.
func (r *recycler) expireLocked(now time.Time) []net.Conn {
	var drop []net.Conn
	if now.Sub(r.swept) > time.Second {
		r.swept = now
		for id, h := range r.unfreed {
			if now.Sub(h.since) > unfreedMaxAge {
				drop = append(drop, h.conn)
				delete(r.unfreed, id)
			}
		}
		for id, since := range r.freedFirst {
			if now.Sub(since) > unfreedMaxAge {
				delete(r.freedFirst, id)
			}
		}
	}
	// free is oldest first.
	stale := slices.IndexFunc(r.free, func(h heldConn) bool { return now.Sub(h.since) < r.maxAge })
	if stale < 0 {
		stale = len(r.free)
	}
	for _, h := range r.free[:stale] {
		drop = append(drop, h.conn)
	}
	r.free = r.free[stale:]
	return drop
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
