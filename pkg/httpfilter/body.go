package httpfilter

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4 << 10

// relay copies message bytes from src to dst unchanged. Bytes wait in dst's buffer only while
// more are already waiting in src: dst is flushed before any read that could block, so a slow
// or interactive sender (server-sent events, a client awaiting 100 Continue) is never held
// back by us.
type relay struct {
	src *bufio.Reader
	dst *bufio.Writer
}

// copyBody copies a body framed by f, then flushes dst.
func (r relay) copyBody(f framing) error {
	var err error
	switch f.kind {
	case bodyLength:
		err = r.copyN(f.length)
	case bodyChunked:
		err = r.copyChunked()
	case bodyUntilClose:
		err = r.copyUntilEOF()
	}
	if err != nil {
		return err
	}
	return r.dst.Flush()
}

// fill makes sure src has buffered bytes, flushing dst first if reading could block.
func (r relay) fill() error {
	if r.src.Buffered() > 0 {
		return nil
	}
	if err := r.dst.Flush(); err != nil {
		return err
	}
	_, err := r.src.Peek(1)
	return err
}

// copyN copies n bytes.
func (r relay) copyN(n int64) error {
	for n > 0 {
		if err := r.fill(); err != nil {
			return noEOF(err)
		}
		b, _ := r.src.Peek(int(min(int64(r.src.Buffered()), n)))
		if _, err := r.dst.Write(b); err != nil {
			return err
		}
		_, _ = r.src.Discard(len(b)) // cannot fail: the bytes are buffered
		n -= int64(len(b))
	}
	return nil
}

// copyUntilEOF copies everything until src ends.
func (r relay) copyUntilEOF() error {
	for {
		err := r.fill()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.copyN(int64(r.src.Buffered())); err != nil {
			return err
		}
	}
}

// copyChunked copies a chunked body: chunks, the last chunk, trailer fields and the final
// empty line (RFC 9112 section 7.1).
func (r relay) copyChunked() error {
	for {
		line, err := r.copyLine(maxChunkLine)
		if err != nil {
			return err
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			return r.copyTrailers()
		}
		if err := r.copyN(size); err != nil {
			return err
		}
		crlf, err := r.copyLine(2)
		if errors.Is(err, errHeadTooLarge) || (err == nil && string(crlf) != "\r\n") {
			return malformed("chunk data not followed by CRLF")
		}
		if err != nil {
			return err
		}
	}
}

// copyTrailers copies the trailer section up to its empty line, at most maxHeadBytes.
func (r relay) copyTrailers() error {
	for budget := maxHeadBytes; ; {
		line, err := r.copyLine(budget)
		if err != nil {
			return err
		}
		if isEmptyLine(line) {
			return nil
		}
		budget -= len(line)
	}
}

// copyLine copies one line of at most limit bytes and returns it.
func (r relay) copyLine(limit int) ([]byte, error) {
	if err := r.fill(); err != nil {
		return nil, noEOF(err)
	}
	line, err := readLine(r.src, limit)
	if err != nil {
		return nil, noEOF(err)
	}
	_, err = r.dst.Write(line)
	return line, err
}

// parseChunkSize parses a chunk-size line, ignoring chunk extensions.
func parseChunkSize(line []byte) (int64, error) {
	line = bytes.TrimRight(line, "\r\n")
	size, _, _ := bytes.Cut(line, []byte(";"))
	size = bytes.TrimRight(size, " \t") // whitespace before extensions, as some senders write
	// 15 hex digits keep the size below 1<<60, far from overflowing int64 arithmetic.
	if len(size) == 0 || len(size) > 15 {
		return 0, malformed("chunk size %q", line)
	}
	n, err := strconv.ParseUint(string(size), 16, 64)
	if err != nil {
		return 0, malformed("chunk size %q", line)
	}
	return int64(n), nil
}

// noEOF turns an early end of input into io.ErrUnexpectedEOF: a framed body was cut short.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
