package lane

import "sync"

// Budget bounds what the lanes sharing it keep for resending, all together: in the sidecar,
// whose memory is the app pod's, many lanes each under MaxUnacked could still add up to more
// than the pod can spare. A lane's Write waits for room, as it waits for its own.
type Budget struct {
	mu    sync.Mutex
	free  int64
	freed chan struct{} // closed and replaced when room is given back
}

// NewBudget returns a budget of size bytes.
func NewBudget(size int64) *Budget {
	return &Budget{free: size, freed: make(chan struct{})}
}

// take takes up to n bytes, at least one, and returns how many; when none is free it waits
// until some is, or returns 0 once stop is closed.
func (b *Budget) take(n int64, stop <-chan struct{}) int64 {
	for {
		b.mu.Lock()
		if b.free > 0 {
			k := min(n, b.free)
			b.free -= k
			b.mu.Unlock()
			return k
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-stop:
			return 0
		}
	}
}

// give returns n bytes.
func (b *Budget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
