package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// fuzzSeeds are valid frames of every type plus a few broken ones.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, tt := range roundTrips() {
		b, err := AppendMessage(nil, tt.msg)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 1024 { // the fuzzer mutates small inputs better
			seeds = append(seeds, b)
		}
	}
	return append(seeds,
		nil,
		[]byte{byte(TypeHello), 0xff, 0xff, 0xff, 0xff},
		frame(TypeEnvReply, []byte{0x80, 0x00}),
		frame(0, nil),
		frame(TypeLaneOpen, cat(make([]byte, 16+8), []byte{2}, make([]byte, 8))),
		frame(TypeLaneTickets, []byte{0x01, 0x01}),
		frame(TypeLaneTicketsReply, cat(uv(2), make([]byte, 16), make([]byte, 4))),
		frame(TypeLaneAcks, cat(uv(MaxLaneAcks+1), make([]byte, 16))),
		frame(TypeLaneEnd, cat(make([]byte, 16), []byte{2})),
		frame(TypeSubscribe, cat(subscribePrefix(), []byte{byte(FilterAnyOf)}, uv(2), []byte{byte(FilterQuery)}, uv(3), []byte("a=b"), []byte{byte(FilterAllOf)}, uv(1), []byte{byte(FilterMethod)}, uv(3), []byte("GET"))),
		frame(TypeSubscribe, cat(subscribePrefix(), []byte{byte(FilterAllOf)}, uv(0))),
		frame(TypeSubscribe, cat(subscribePrefix(), bytes.Repeat(cat([]byte{byte(FilterAllOf)}, uv(1)), MaxFilterDepth), []byte{byte(FilterPath)}, uv(0))),
		frame(TypePeerDeliver, cat(make([]byte, 16), []byte{0x1f, 0x90}, uv(maxAddressLen+1))),
		frame(TypeSessionLabel, cat(uv(4), []byte("\x1b[2J"))),
		frame(TypePeerHandOver, cat(make([]byte, 16), []byte{0x1f, 0x90}, uv(0), make([]byte, 16), make([]byte, 4), uv(1), uv(7), []byte{0x1f, 0x90}, uv(0), uv(0), uv(0), []byte{byte(FilterAllOf)}, uv(0))),
		frame(TypePeerRoute, make([]byte, 17)),
		frame(TypeLaneFree, make([]byte, 9)),
		frame(TypeSessionLabel, cat(uv(2), []byte("\u202e"[:2]))),
		frame(TypeSessionsReply, cat(uv(1), uv(0), uv(3), []byte("a\nb"), make([]byte, 8), uv(0), []byte{0}, uv(0))),
	)
}

// FuzzParseMessage: no input panics, and whatever parses is the one encoding of its message.
func FuzzParseMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := ParseMessage(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if err != nil {
			if m != nil {
				t.Fatalf("message %#v with error %v", m, err)
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is none of the package's errors", err)
			}
			return
		}
		enc, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("parsed %#v does not encode: %v", m, err)
		}
		if !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, b[:n])
		}
		again, n2, err := ParseMessage(enc)
		if err != nil || n2 != len(enc) || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-parse = %#v, %d, %v; want %#v, %d, nil", again, n2, err, m, len(enc))
		}
	})
}

// FuzzReader: the Reader, fed one byte at a time, agrees with ParseMessage frame by frame and
// never reads past the frame it returns.
func FuzzReader(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(bytes.Join(seeds, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		stream := bytes.NewReader(b)
		r := NewReader(iotest.OneByteReader(stream))
		off := 0
		for {
			want, n, wantErr := ParseMessage(b[off:])
			got, err := r.ReadMessage()
			read := len(b) - stream.Len()
			switch {
			case wantErr == nil:
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("at %d: Reader %#v, %v; ParseMessage %#v", off, got, err, want)
				}
			case n > 0: // a whole frame that does not decode; both go on after it
				if !errors.Is(err, sentinel(wantErr)) {
					t.Fatalf("at %d: Reader %v; ParseMessage %v", off, err, wantErr)
				}
			case errors.Is(wantErr, ErrTooLarge): // announced by the header
				if !errors.Is(err, ErrTooLarge) || read != off+headerLen {
					t.Fatalf("at %d: Reader %v after reading to %d; ParseMessage %v", off, err, read, wantErr)
				}
				return
			case errors.Is(wantErr, ErrTruncated):
				if off == len(b) {
					if err != io.EOF {
						t.Fatalf("at the end: Reader %v, want io.EOF", err)
					}
				} else if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("at %d of %d: Reader %v, want ErrTruncated and io.ErrUnexpectedEOF", off, len(b), err)
				}
				return
			default:
				t.Fatalf("ParseMessage returned %v", wantErr)
			}
			off += n
			if read != off {
				t.Fatalf("Reader read to %d, the frame ends at %d", read, off)
			}
		}
	})
}

// sentinel is which of the package's errors err wraps.
func sentinel(err error) error {
	for _, s := range []error{ErrTruncated, ErrTooLarge, ErrUnknownType, ErrMalformed} {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}
