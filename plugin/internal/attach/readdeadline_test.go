package attach

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// A deadline wakes a Read waiting on a stream without deadlines, and no byte the stream
// delivers after is lost: the next Read, deadline cleared, gets it.
func TestReadAheadDeadlineKeepsWhatComesAfter(t *testing.T) {
	src, w := io.Pipe()
	r := newReadAhead(src)
	defer r.Close()

	go func() { _, _ = w.Write([]byte("first")) }()
	buf := make([]byte, 3)
	var got []byte
	for len(got) < len("first") {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "first" {
		t.Fatalf("read %q, want %q", got, "first")
	}

	woken := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		woken <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the Read block
	if err := r.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the woken Read returned %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a passed deadline did not wake the Read")
	}
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a Read past the deadline returned %v, want os.ErrDeadlineExceeded", err)
	}

	_ = r.SetReadDeadline(time.Time{})
	go func() {
		_, _ = w.Write([]byte("next"))
		w.Close()
	}()
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "next" {
		t.Fatalf("after the deadline was cleared: read %q, %v; want %q and the end of stream", rest, err, "next")
	}
}

// A deadline in the future passes by itself; moving it later, or clearing it, holds it off.
func TestReadAheadDeadlineInTheFuture(t *testing.T) {
	src, w := io.Pipe()
	defer w.Close()
	r := newReadAhead(src)
	defer r.Close()
	_ = r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	begin := time.Now()
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read returned %v, want os.ErrDeadlineExceeded", err)
	}
	if waited := time.Since(begin); waited < 20*time.Millisecond {
		t.Errorf("the Read gave up after %s, before its deadline", waited)
	}

	_ = r.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_ = r.SetReadDeadline(time.Time{}) // the earlier timer must not fire
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = w.Write([]byte("x"))
	}()
	if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("Read with the deadline cleared = %d, %v; want the byte that came", n, err)
	}
}

// Close ends a Read that waits.
func TestReadAheadClose(t *testing.T) {
	src, w := io.Pipe()
	defer w.Close()
	r := newReadAhead(src)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the waiting Read")
	}
}
