package wire

import "errors"

// Errors of framing and decoding. Returned errors wrap these with detail; test with errors.Is.
var (
	// ErrTruncated means the input ends inside a frame: a parser needs more bytes, a stream
	// ended or failed mid-frame.
	ErrTruncated = errors.New("wire: truncated frame")
	// ErrTooLarge means a frame, list or string exceeds its bound.
	ErrTooLarge = errors.New("wire: too large")
	// ErrUnknownType means a frame's type is not one this version knows.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrMalformed means a payload does not decode exactly, trailing bytes included.
	ErrMalformed = errors.New("wire: malformed message")
)
