package within

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWithinGivesUpAtTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	begin := time.Now()
	_, err := Call(ctx, func() (int, error) {
		<-release // a call that takes no context and does not answer
		return 1, nil
	}, nil)
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > time.Second {
		t.Errorf("within returned %v after %s, want a timeout after 50ms", err, time.Since(begin))
	}
	if v, err := Call(t.Context(), func() (int, error) { return 7, nil }, nil); v != 7 || err != nil {
		t.Errorf("within = %d, %v", v, err)
	}
}

// What answers after within gave up is released: a connection made too late is closed. A
// failure has nothing to release.
func TestWithinReleasesALateAnswer(t *testing.T) {
	for _, fail := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		answer := make(chan struct{})
		released := make(chan int, 1)
		gaveUp := make(chan struct{})
		go func() {
			defer close(gaveUp)
			_, err := Call(ctx, func() (int, error) {
				<-answer
				if fail {
					return 0, errors.New("refused")
				}
				return 7, nil
			}, func(v int) { released <- v })
			if !errors.Is(err, ErrNoAnswer) {
				t.Errorf("within = %v, want ErrNoAnswer", err)
			}
			close(answer)
		}()
		cancel()
		<-gaveUp
		select {
		case v := <-released:
			if fail || v != 7 {
				t.Errorf("fail=%v: released %d", fail, v)
			}
		case <-time.After(100 * time.Millisecond):
			if !fail {
				t.Error("the late answer was not released")
			}
		}
	}
}
