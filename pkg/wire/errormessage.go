package wire

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// ErrorCode classifies an Error message. Values are on the wire: append only.
type ErrorCode uint16

// The error codes.
const (
	// ErrCodeProtocol: the peer sent something this side cannot decode or did not expect.
	ErrCodeProtocol ErrorCode = 1 + iota
	// ErrCodeVersion: the hello carried a protocol version this side does not speak.
	ErrCodeVersion
	// ErrCodeUnsupported: a request for a feature that was not negotiated.
	ErrCodeUnsupported
	// ErrCodeInternal: the request was fine but serving it failed.
	ErrCodeInternal
	// ErrCodeTooLarge: a frame or field beyond its bound, or an answer that would not fit.
	ErrCodeTooLarge
)

func (c ErrorCode) String() string {
	switch c {
	case ErrCodeProtocol:
		return "protocol"
	case ErrCodeVersion:
		return "version"
	case ErrCodeUnsupported:
		return "unsupported"
	case ErrCodeInternal:
		return "internal"
	case ErrCodeTooLarge:
		return "too large"
	}
	// Unknown codes are kept, not rejected: a newer peer may add codes, and an error is still an
	// error.
	return "code " + strconv.Itoa(int(c))
}

// Error reports a failure to the peer, in place of the answer it asked for. It is an error, so a
// received one can be returned as is; errors.Is matches another Error of the same Code (and the
// same Reason, unless the target's Reason is empty).
type Error struct {
	Code ErrorCode
	// Reason is for people and logs. An over-long reason is shortened when encoded rather than
	// refused: a report that cannot be sent hides the failure it reports.
	Reason string
}

// Type implements Message.
func (Error) Type() Type { return TypeError }

func (e Error) Error() string {
	if e.Reason == "" {
		return "remote " + e.Code.String() + " error"
	}
	return "remote " + e.Code.String() + " error: " + e.Reason
}

// Is makes errors.Is(err, Error{Code: ErrCodeVersion}) match whatever the reason.
func (e Error) Is(target error) bool {
	t, ok := target.(Error)
	return ok && t.Code == e.Code && (t.Reason == "" || t.Reason == e.Reason)
}

func (Error) check() error { return nil }

func (e Error) appendPayload(b []byte) []byte { return appendError(b, e) }

func appendError(b []byte, e Error) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(e.Code))
	return appendString(b, clampReason(e.Reason))
}

func parseError(b []byte) (Error, int, error) {
	code, n, err := parseUint16(b, "error code")
	if err != nil {
		return Error{}, 0, err
	}
	reason, m, err := parseString(b[n:], maxReasonLen, "error reason")
	if err != nil {
		return Error{}, 0, err
	}
	return Error{Code: ErrorCode(code), Reason: reason}, n + m, nil
}

// ErrorOf is the Error to send for err: a received Error as it is, this package's decoding
// errors as protocol errors (too large as its own code), and anything else as internal.
func ErrorOf(err error) Error {
	var e Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrTooLarge):
		return Error{Code: ErrCodeTooLarge, Reason: clampReason(err.Error())}
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownType):
		return Error{Code: ErrCodeProtocol, Reason: clampReason(err.Error())}
	case err == nil:
		return Error{Code: ErrCodeInternal}
	}
	return Error{Code: ErrCodeInternal, Reason: clampReason(err.Error())}
}
