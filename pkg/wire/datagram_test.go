package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestDatagramRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	sizes := []int{0, 1, 512, MaxDatagram}
	for _, n := range sizes {
		if err := WriteDatagram(&stream, bytes.Repeat([]byte{byte(n)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, MaxDatagram)
	for _, want := range sizes {
		n, err := ReadDatagram(&stream, buf)
		if err != nil || n != want || !bytes.Equal(buf[:n], bytes.Repeat([]byte{byte(want)}, want)) {
			t.Fatalf("datagram of %d: got %d bytes, %v", want, n, err)
		}
	}
	if _, err := ReadDatagram(&stream, buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last datagram: %v, want EOF", err)
	}
}

func TestDatagramTooLargeIsRefused(t *testing.T) {
	if err := WriteDatagram(io.Discard, make([]byte, MaxDatagram+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := ReadDatagram(bytes.NewReader([]byte{0xff, 0xff}), make([]byte, 10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestDatagramTruncated(t *testing.T) {
	var stream bytes.Buffer
	_ = WriteDatagram(&stream, []byte("hello"))
	whole := stream.Bytes()
	for cut := 1; cut < len(whole); cut++ {
		if _, err := ReadDatagram(bytes.NewReader(whole[:cut]), make([]byte, 10)); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
}

func TestDatagramLongerThanBufferIsCut(t *testing.T) {
	var stream bytes.Buffer
	_ = WriteDatagram(&stream, []byte("hello"))
	_ = WriteDatagram(&stream, []byte("next"))
	buf := make([]byte, 2)
	if n, err := ReadDatagram(&stream, buf); err != nil || string(buf[:n]) != "he" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	big := make([]byte, 10)
	if n, err := ReadDatagram(&stream, big); err != nil || string(big[:n]) != "next" {
		t.Fatalf("the next datagram: %q, %v", big[:n], err)
	}
}

// FuzzReadDatagram: no input panics or reads past its datagrams.
func FuzzReadDatagram(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		buf := make([]byte, 100)
		for {
			n, err := ReadDatagram(r, buf)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if n > len(buf) {
				t.Fatalf("read %d into %d", n, len(buf))
			}
		}
	})
}
