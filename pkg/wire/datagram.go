package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxDatagram is the largest UDP payload a datagram frame carries (the IPv4 maximum).
const MaxDatagram = 65507

// WriteDatagram writes p as one datagram on a stream: a 2-byte big-endian length, then p, in a
// single Write. A datagram stream is what a Dial of network "udp" carries.
func WriteDatagram(w io.Writer, p []byte) error {
	if len(p) > MaxDatagram {
		return fmt.Errorf("%w: datagram of %d bytes, max %d", ErrTooLarge, len(p), MaxDatagram)
	}
	b := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(b, uint16(len(p)))
	copy(b[2:], p)
	_, err := w.Write(b)
	return err
}

// ReadDatagram reads one datagram into buf and returns its length. A datagram longer than buf
// is truncated to it, as a UDP socket's read would; the rest is discarded. io.EOF means the
// stream ended between datagrams, ErrTruncated inside one.
func ReadDatagram(r io.Reader, buf []byte) (int, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: datagram length", ErrTruncated)
		}
		return 0, err
	}
	size := int(binary.BigEndian.Uint16(hdr[:]))
	if size > MaxDatagram {
		return 0, fmt.Errorf("%w: datagram of %d bytes, max %d", ErrTooLarge, size, MaxDatagram)
	}
	n := min(size, len(buf))
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return 0, fmt.Errorf("%w: datagram of %d bytes: %v", ErrTruncated, size, err)
	}
	if _, err := io.CopyN(io.Discard, r, int64(size-n)); err != nil {
		return 0, fmt.Errorf("%w: datagram of %d bytes: %v", ErrTruncated, size, err)
	}
	return n, nil
}
