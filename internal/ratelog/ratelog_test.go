package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(50 * time.Millisecond)
	if skipped, ok := l.Allow(); !ok || skipped != 0 {
		t.Fatalf("first Allow = %d, %v; want 0, true", skipped, ok)
	}
	for range 3 {
		if _, ok := l.Allow(); ok {
			t.Fatal("a second warning within the period was let through")
		}
	}
	time.Sleep(60 * time.Millisecond)
	if skipped, ok := l.Allow(); !ok || skipped != 3 {
		t.Fatalf("Allow after the period = %d, %v; want 3, true", skipped, ok)
	}
}
