package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reader reads frames from a stream, reusing one payload buffer.
//
// Unlike a bufio.Reader it never reads past the end of the frame it returns: a data stream
// switches from frames to a proxied connection's raw bytes after DialReply, and those bytes must
// stay in the stream. It therefore makes two reads per frame; control traffic is light.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	hdr [headerLen]byte
	buf []byte // grows to the largest frame seen, at most MaxFrameSize
	// err is set once the Reader has lost its place in the stream (a frame too large to read, a
	// frame cut short): nothing after it can be decoded, so every later call returns it.
	err error
}

// NewReader returns a Reader of frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ReadMessage reads one frame and decodes it. It returns:
//   - io.EOF when the stream ends cleanly between frames;
//   - an error wrapping ErrTruncated and io.ErrUnexpectedEOF when it ends inside a frame, or
//     ErrTruncated and the stream's error when reading fails inside a frame;
//   - ErrTooLarge when a header announces more than MaxFrameSize, before reading or allocating
//     anything for the payload;
//   - ErrUnknownType, ErrMalformed, or ErrTooLarge for a list or string over its bound, for a
//     frame that does not decode. The frame has been read, so the Reader stays in step and may
//     go on.
//
// A read error before the first byte of a frame (a deadline, say) is returned as it is and
// leaves the Reader usable.
func (r *Reader) ReadMessage() (Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	if n, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if n == 0 {
			return nil, err // io.EOF at a frame boundary, or a failure that lost nothing
		}
		return nil, r.fail(midFrame(fmt.Sprintf("frame header: got %d of %d bytes", n, headerLen), err))
	}
	t, size := Type(r.hdr[0]), binary.BigEndian.Uint32(r.hdr[1:])
	if size > MaxFrameSize {
		return nil, r.fail(tooLarge(t, size))
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	p := r.buf[:size]
	if n, err := io.ReadFull(r.r, p); err != nil {
		return nil, r.fail(midFrame(fmt.Sprintf("%s frame: got %d of %d payload bytes", t, n, size), err))
	}
	return parsePayload(t, p)
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// midFrame describes a stream that ended or failed inside a frame.
func midFrame(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %s: %w", ErrTruncated, what, err)
}
