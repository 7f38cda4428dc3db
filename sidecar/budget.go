package sidecar

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// The sidecar's memory is the app pod's: an ephemeral container cannot have resources of its
// own, so what the sidecar holds counts against the pod's limit, and the kernel kills the app
// when it is reached. Each request is bounded, their number is not: these budgets bound what
// all clients together make the sidecar hold.
const (
	// fileBudget bounds the file contents held at once: files read for the client (a
	// FileRequest, an FSRead) until they are sent, files written until they are on disk. Four
	// files at the largest size (wire.MaxFileSize, 16 MiB) at once.
	fileBudget = 64 << 20
	// copyBudget bounds what the mirror copies hold in their queues, all ports and clients
	// together: eight copies at their own bound (mirrorBacklog).
	copyBudget = 32 << 20
	// budgetWait is how long a file request waits for its share of fileBudget before it
	// fails with ENOMEM: long enough for others' files to be sent.
	budgetWait = 5 * time.Second
)

// budget bounds the bytes that requests of one kind hold at once, across every client.
type budget struct {
	what string
	size int64
	wait time.Duration // budgetWait but in tests
	sem  *semaphore.Weighted
}

func newBudget(what string, size int64) *budget {
	return &budget{what: what, size: size, wait: budgetWait, sem: semaphore.NewWeighted(size)}
}

// errBudget is what a request that does not get its share fails with.
func (b *budget) errBudget(n int64) error {
	return fmt.Errorf("%d bytes for %s: the sidecar's %d MiB for them are in use: %w", n, b.what, b.size>>20, syscall.ENOMEM)
}

// hold is what one request holds of a budget. It is safe for concurrent use.
type hold struct {
	b  *budget
	mu sync.Mutex
	n  int64
}

func (b *budget) hold() *hold { return &hold{b: b} }

// take adds n bytes to h, waiting for others to give them back for at most budgetWait.
func (h *hold) take(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if n > h.b.size {
		return h.b.errBudget(n)
	}
	ctx, cancel := context.WithTimeout(ctx, h.b.wait)
	defer cancel()
	if err := h.b.sem.Acquire(ctx, n); err != nil {
		return h.b.errBudget(n)
	}
	h.add(n)
	return nil
}

// tryTake adds n bytes to h if they are free now, and reports whether they were.
func (h *hold) tryTake(n int64) bool {
	if n <= 0 {
		return true
	}
	if !h.b.sem.TryAcquire(n) {
		return false
	}
	h.add(n)
	return true
}

func (h *hold) add(n int64) {
	h.mu.Lock()
	h.n += n
	h.mu.Unlock()
}

// give gives n of the bytes h holds back.
func (h *hold) give(n int64) {
	h.mu.Lock()
	n = min(n, h.n)
	h.n -= n
	h.mu.Unlock()
	if n > 0 {
		h.b.sem.Release(n)
	}
}

// held is how many bytes h holds.
func (h *hold) held() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// release gives back everything h holds.
func (h *hold) release() { h.give(h.held()) }
