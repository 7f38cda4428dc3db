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
	// free; maxEarlyWords, the sidecar's words that came before their lane ended here (in a
	// burst of connections, most do: a word costs a few bytes, and one dropped costs its
	// connection's reuse). Either is kept from unfreedMaxAge to 1.5 times that: the two
	// halves come within a round trip of each other, or never (a lane reset meanwhile, a word
	// dropped), and a connection whose word never comes is closed then, which frees the
	// sidecar's end too (it waits for the next lane on it).
	maxUnfreed    = 256
	maxEarlyWords = 4096
	unfreedMaxAge = 4 * time.Second
)

// recycler keeps the connections of lanes that ended cleanly (lane.Options.Recycle) for the
// next lanes, which then cost no new port-forward stream or TLS handshake. A connection is free
// once both ends are done with it: its lane ended here, and the sidecar said so of its own end
// (wire.LaneFree), in either order; before that, the sidecar could still read the next lane's
// LaneOpen as the old lane's bytes.
type recycler struct {
	// maxAge and unfreedAge are recycledMaxAge and unfreedMaxAge, but in tests.
	maxAge, unfreedAge time.Duration

	mu sync.Mutex
	// unfreed holds the connections of lanes ended here, by lane, until the sidecar's word.
	unfreed map[uint64]heldConn
	// freedFirst holds when the sidecar's word came, by lane, for lanes not yet ended here.
	freedFirst map[uint64]time.Time
	free       []heldConn // oldest first
	closed     bool
	// swept is when unfreed and freedFirst were last looked through for what expired.
	swept time.Time
	// expiry closes what is kept too long (expireLocked), while anything is kept; it fires
	// at expiryAt.
	expiry   *time.Timer
	expiryAt time.Time
}

// heldConn is a lane connection kept since a time.
type heldConn struct {
	conn  net.Conn
	since time.Time
}

func newRecycler(maxAge, unfreedAge time.Duration) *recycler {
	return &recycler{maxAge: maxAge, unfreedAge: unfreedAge, unfreed: map[uint64]heldConn{}, freedFirst: map[uint64]time.Time{}}
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
		r.expireLaterLocked()
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
	} else if !r.closed && len(r.freedFirst) < maxEarlyWords {
		r.freedFirst[id] = now
		r.expireLaterLocked()
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

// expireLaterLocked sees to it that the timer forgets what is kept too long: it fires when
// the oldest free connection passes maxAge, and within half of unfreedAge while lanes or words
// wait for their other half (which are then dropped between unfreedAge and 1.5 times that;
// finding their oldest would take a look through them). An armed timer is moved earlier if
// need be.
func (r *recycler) expireLaterLocked() {
	if r.closed {
		return
	}
	var at time.Time
	if len(r.unfreed) > 0 || len(r.freedFirst) > 0 {
		at = time.Now().Add(r.unfreedAge / 2)
	}
	if len(r.free) > 0 {
		if freeAt := r.free[0].since.Add(r.maxAge); at.IsZero() || freeAt.Before(at) {
			at = freeAt
		}
	}
	if at.IsZero() {
		return
	}
	if r.expiry != nil && (!at.Before(r.expiryAt) || !r.expiry.Stop()) {
		return // it fires in time, or is firing and arms itself again
	}
	r.expiryAt = at
	r.expiry = time.AfterFunc(time.Until(at), func() {
		r.mu.Lock()
		r.expiry = nil
		r.swept = time.Time{} // a look through unfreed and freedFirst is due
		drop := r.expireLocked(time.Now())
		r.expireLaterLocked()
		r.mu.Unlock()
		closeAll(drop)
	})
}

// expireLocked forgets what was kept too long, and returns the connections to close. It
// looks through the lanes and words waiting for their other half at most once a second,
// unless the timer asks.
func (r *recycler) expireLocked(now time.Time) []net.Conn {
	var drop []net.Conn
	if now.Sub(r.swept) > time.Second {
		r.swept = now
		for id, h := range r.unfreed {
			if now.Sub(h.since) > r.unfreedAge {
				drop = append(drop, h.conn)
				delete(r.unfreed, id)
			}
		}
		for id, since := range r.freedFirst {
			if now.Sub(since) > r.unfreedAge {
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
