// Package within bounds the calls that take no context (client-go's resource builder, the
// port-forward dialer), and those whose bound is not their context's (a session that outlives
// its dial): Call gives up when a context ends, and closes what answers too late.
package within

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoAnswer: Call gave up before its function answered.
var ErrNoAnswer = errors.New("no answer in time")

// Call runs f on a goroutine of its own and returns its answer, or gives up when ctx ends
// first. Giving up returns an error that wraps ErrNoAnswer and ctx's error.
//
// f then goes on in the background until it answers. What it returns then, when it did not
// fail, is handed to release, when not nil: a connection made too late is closed, not leaked.
func Call[T any](ctx context.Context, f func() (T, error), release func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if release != nil {
			go func() {
				if r := <-done; r.err == nil {
					release(r.v)
				}
			}()
		}
		var zero T
		return zero, fmt.Errorf("%w: %w", ErrNoAnswer, ctx.Err())
	}
}
