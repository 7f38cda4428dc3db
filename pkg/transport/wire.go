package transport

import (
	"encoding/binary"
	"fmt"
)

// The framing of QUIC packets inside a byte stream; see the package documentation.
const (
	streamMagic   = "RMCQ"
	streamVersion = 1
	// headerLen is magic, version and session token.
	headerLen = len(streamMagic) + 1 + sessionTokenLen
	// frameHeaderLen is the length prefix of every datagram.
	frameHeaderLen = 2
	// maxDatagramLen is what the length prefix can say. quic-go sends at most streamPacketSize, so
	// in practice frames are far smaller; a longer one is passed on and truncated by the reader's
	// buffer, as UDP would.
	maxDatagramLen = 1<<16 - 1
	// maxFrameLen is the most bytes one frame takes on the stream.
	maxFrameLen = frameHeaderLen + maxDatagramLen
)

// wireError is a constant error type: wire errors are constants, not reassignable globals.
type wireError string

func (e wireError) Error() string { return string(e) }

const (
	// errTruncated means more bytes are needed; a stream reader waits for them, a parser of a
	// complete buffer reports it.
	errTruncated = wireError("truncated")
	errBadMagic  = wireError("not a remocal packet stream (bad magic)")
	// errEmptyFrame: a zero length would carry nothing (QUIC does its own keep-alives), so it can
	// only be garbage, and treating it as an error stops a peer from making a reader spin on it.
	errEmptyFrame = wireError("empty frame")
)

// versionError is an unknown stream version: the two sides were built from incompatible releases.
type versionError struct{ got byte }

func (e versionError) Error() string {
	return fmt.Sprintf("unsupported packet stream version %d (want %d)", e.got, streamVersion)
}

// appendHeader appends the header that opens every client stream.
func appendHeader(b []byte, t sessionToken) []byte {
	b = append(b, streamMagic...)
	b = append(b, streamVersion)
	return append(b, t[:]...)
}

// parseHeader parses the header at the start of b and says how many bytes it took.
func parseHeader(b []byte) (sessionToken, int, error) {
	var t sessionToken
	// Check the magic on whatever has arrived, so that garbage is refused without waiting for more.
	n := min(len(b), len(streamMagic))
	if string(b[:n]) != streamMagic[:n] {
		return t, 0, errBadMagic
	}
	if len(b) < headerLen {
		return t, 0, errTruncated
	}
	if v := b[len(streamMagic)]; v != streamVersion {
		return t, 0, versionError{got: v}
	}
	copy(t[:], b[len(streamMagic)+1:headerLen])
	return t, headerLen, nil
}

// appendFrame appends one datagram with its length prefix. The caller ensures
// 1 <= len(p) <= maxDatagramLen.
func appendFrame(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...)
}

// parseFrame parses the frame at the start of b: the datagram (aliasing b) and the bytes taken.
func parseFrame(b []byte) ([]byte, int, error) {
	if len(b) < frameHeaderLen {
		return nil, 0, errTruncated
	}
	n, err := frameLen(b)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < n {
		return nil, 0, errTruncated
	}
	return b[frameHeaderLen:n], n, nil
}

// frameLen is the length on the stream of the frame that starts with the length prefix b, so a
// stream reader knows how much to wait for.
func frameLen(b []byte) (int, error) {
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 {
		return 0, errEmptyFrame
	}
	return frameHeaderLen + n, nil
}
