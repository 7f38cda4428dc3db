//go:build linux

package redirect

import (
	"context"
	"testing"
	"time"
)

// One holder at a time: the second waits for the first, or gives up with its context.
func TestLockIsExclusive(t *testing.T) {
	n := newTestNet(t)
	in(t, n.podFD, func() { // the lock is the network namespace's
		unlock, err := Lock(t.Context())
		if err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := Lock(ctx); err == nil {
			t.Error("locked twice")
			return
		}
		time.AfterFunc(50*time.Millisecond, unlock)
		start := time.Now()
		unlock2, err := Lock(t.Context())
		if err != nil {
			t.Errorf("after unlock: %v", err)
			return
		}
		unlock2()
		if waited := time.Since(start); waited < 40*time.Millisecond {
			t.Errorf("took the lock after %v, before its holder let it go", waited)
		}
	})
}
