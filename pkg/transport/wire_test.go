package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	tok := sessionToken{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b := appendHeader([]byte("x"), tok)
	if len(b) != 1+headerLen {
		t.Fatalf("header takes %d bytes, want %d", len(b)-1, headerLen)
	}
	got, n, err := parseHeader(append(b[1:], "rest"...))
	if err != nil || n != headerLen || got != tok {
		t.Fatalf("parseHeader = %x, %d, %v; want %x, %d", got[:], n, err, tok[:], headerLen)
	}

	// Every proper prefix is truncated, not an error, so a stream reader waits for the rest.
	for i := range headerLen {
		if _, _, err := parseHeader(b[1 : 1+i]); !errors.Is(err, errTruncated) {
			t.Errorf("prefix of %d bytes: %v, want errTruncated", i, err)
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	good := appendHeader(nil, sessionToken{})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{name: "http", b: []byte("GET / HTTP/1.1\r\n\r\n"), want: errBadMagic},
		{name: "bad magic, short", b: []byte("RX"), want: errBadMagic},
		{name: "bad magic, full length", b: append([]byte("rmcq"), good[4:]...), want: errBadMagic},
		{name: "version 0", b: append([]byte("RMCQ\x00"), good[5:]...), want: versionError{got: 0}},
		{name: "version 2", b: append([]byte("RMCQ\x02"), good[5:]...), want: versionError{got: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseHeader(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("parseHeader(%q) = %v, want %v", tt.b, err, tt.want)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, size := range []int{1, 2, 1200, streamPacketSize, packetBufLen + 1, maxDatagramLen} {
		p := bytes.Repeat([]byte{0xab}, size)
		b := appendFrame([]byte("prefix"), p)
		got, n, err := parseFrame(append(b[len("prefix"):], "next"...))
		if err != nil || n != frameHeaderLen+size || !bytes.Equal(got, p) {
			t.Fatalf("size %d: parseFrame = %d bytes, n=%d, %v", size, len(got), n, err)
		}
		for i := range frameHeaderLen + size {
			if _, _, err := parseFrame(b[len("prefix") : len("prefix")+i]); !errors.Is(err, errTruncated) {
				t.Fatalf("size %d, prefix of %d bytes: %v, want errTruncated", size, i, err)
			}
		}
	}
	if _, _, err := parseFrame([]byte{0, 0, 1, 2}); !errors.Is(err, errEmptyFrame) {
		t.Errorf("zero length: %v, want errEmptyFrame", err)
	}
}

func TestCheckDatagramLen(t *testing.T) {
	for _, tt := range []struct {
		n  int
		ok bool
	}{{0, false}, {1, true}, {maxDatagramLen, true}, {maxDatagramLen + 1, false}} {
		if err := checkDatagramLen(make([]byte, tt.n)); (err == nil) != tt.ok {
			t.Errorf("%d bytes: %v, want ok=%v", tt.n, err, tt.ok)
		}
	}
}

// FuzzStreamParse feeds arbitrary bytes to the parsers: they must never panic, never claim more
// than they were given, and re-encode what they accepted to the same bytes.
func FuzzStreamParse(f *testing.F) {
	f.Add(appendFrame(appendHeader(nil, sessionToken{7}), []byte("quic")))
	f.Add(appendHeader(nil, sessionToken{}))
	f.Add([]byte("RMCQ\x01"))
	f.Add([]byte("RMCQ\x02aaaaaaaaaaaaaaaa\x00\x01x"))
	f.Add(append(appendHeader(nil, sessionToken{}), 0, 0))
	f.Add(append(appendHeader(nil, sessionToken{}), 0xff, 0xff, 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, n, err := parseHeader(b)
		if err != nil {
			return
		}
		if n != headerLen || !bytes.Equal(appendHeader(nil, tok), b[:n]) {
			t.Fatalf("header of %d bytes does not re-encode", n)
		}
		rest := b[n:]
		for len(rest) > 0 {
			p, n, err := parseFrame(rest)
			if err != nil {
				if !errors.Is(err, errTruncated) && !errors.Is(err, errEmptyFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if n > len(rest) || n != frameHeaderLen+len(p) || len(p) == 0 {
				t.Fatalf("frame claims %d bytes with a %d-byte datagram out of %d", n, len(p), len(rest))
			}
			if !bytes.Equal(appendFrame(nil, p), rest[:n]) {
				t.Fatal("frame does not re-encode")
			}
			rest = rest[n:]
		}
	})
}

// FuzzLinkRead feeds arbitrary bytes through the server's real stream reader (header, then
// frames): it must never panic, and must deliver exactly the frames that parseFrame finds.
func FuzzLinkRead(f *testing.F) {
	f.Add(appendFrame(appendFrame(appendHeader(nil, sessionToken{7}), []byte("quic")), []byte{1}))
	f.Add([]byte("RMCQ\x01"))
	f.Add(append(appendHeader(nil, sessionToken{}), 0, 0))
	f.Add(append(appendHeader(nil, sessionToken{}), 0, 5, 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want [][]byte
		if _, n, err := parseHeader(b); err == nil {
			for rest := b[n:]; ; {
				p, n, err := parseFrame(rest)
				if err != nil {
					break
				}
				want = append(want, p)
				rest = rest[n:]
			}
		}

		server, client := net.Pipe()
		go func() {
			client.Write(b)
			client.Close()
		}()
		l := newLink(server, time.Minute)
		defer l.close()
		var got [][]byte
		if _, err := l.readHeader(time.Minute); err == nil {
			err := l.readFrames(func(p []byte) bool {
				got = append(got, bytes.Clone(p))
				return true
			})
			if err == nil {
				t.Fatal("readFrames ended without an error")
			}
		}
		if len(got) != len(want) {
			t.Fatalf("reader delivered %d frames, parser found %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}

// TestLinkReadEOF checks the reader reports a clean end of stream as such.
func TestLinkReadEOF(t *testing.T) {
	server, client := net.Pipe()
	go func() {
		client.Write(appendFrame(appendHeader(nil, sessionToken{1}), []byte("x")))
		client.Close()
	}()
	l := newLink(server, time.Minute)
	defer l.close()
	if _, err := l.readHeader(time.Minute); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := l.readFrames(func([]byte) bool { n++; return true })
	if n != 1 || !errors.Is(err, io.EOF) {
		t.Errorf("delivered %d frames and ended with %v; want 1 and EOF", n, err)
	}
}
