package wire

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// ErrnoOf is the Linux errno to put in a DialReply for the result of a dial, so that the
// client's connect fails as the pod's would have (and in a FileReply or FSReply for a file
// operation, whose errors wrap their errno):
//
//   - 0 for nil;
//   - ECANCELED when the dial was cancelled, typically because the client went away;
//   - EHOSTUNREACH for a name that does not resolve (any net.DNSError but a timeout). connect
//     never sees names, so no errno is exact; "no route to host" is what a program gets for a
//     destination it cannot reach, and unlike ENOENT every program already handles it from
//     connect. This is decided before looking for an errno, because an errno inside a
//     DNSError belongs to the talk with the DNS server, not to a connect to the destination;
//   - the errno itself when err wraps one (net.OpError and os.SyscallError unwrap to it), so
//     ECONNREFUSED, ENETUNREACH, EHOSTUNREACH and the rest pass through unchanged;
//   - ETIMEDOUT for a timeout: os.ErrDeadlineExceeded, context.DeadlineExceeded, or any error
//     whose Timeout method says so; a connect whose SYNs go unanswered reports the same;
//   - EINVAL for an address or network the dialer refuses to parse (net.AddrError,
//     net.ParseError, net.UnknownNetworkError);
//   - EIO for anything else.
func ErrnoOf(err error) uint32 {
	if err == nil {
		return 0
	}
	var (
		dnsErr     *net.DNSError
		errno      syscall.Errno
		timeout    interface{ Timeout() bool }
		addrErr    *net.AddrError
		parseErr   *net.ParseError
		unknownNet net.UnknownNetworkError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return linuxECANCELED
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return linuxETIMEDOUT
		}
		return linuxEHOSTUNREACH
	case errors.As(err, &errno) && errno != 0:
		return errnoToWire(errno)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return linuxETIMEDOUT
	case errors.As(err, &timeout) && timeout.Timeout():
		return linuxETIMEDOUT
	case errors.As(err, &addrErr), errors.As(err, &parseErr), errors.As(err, &unknownNet):
		return linuxEINVAL
	}
	return linuxEIO
}

// DialReplyOf is the reply to send for the result of a dial: success for nil, else the errno
// from ErrnoOf and the error's text as the reason.
func DialReplyOf(err error) DialReply {
	if err == nil {
		return DialReply{}
	}
	return DialReply{Errno: ErrnoOf(err), Reason: clampReason(err.Error())}
}

// Err is nil when the pod-side dial succeeded, else a *DialError for which
// errors.Is(err, syscall.Errno(r.Errno)) holds (on Linux; elsewhere the local errno of the same
// meaning).
func (r DialReply) Err() error {
	if r.Errno == 0 {
		return nil
	}
	return &DialError{Errno: errnoFromWire(r.Errno), Reason: r.Reason}
}

// replyError is the error a reply's errno and reason make, nil for errno 0; fallback begins
// the reason when the peer gave none (DialError's own default talks of connecting).
func replyError(errno uint32, reason, fallback string) error {
	if errno == 0 {
		return nil
	}
	e := errnoFromWire(errno)
	if reason == "" {
		reason = fallback + ": " + e.Error()
	}
	return &DialError{Errno: e, Reason: reason}
}

// DialError is a dial that failed inside the pod.
type DialError struct {
	Errno  syscall.Errno // local errno: what the local connect should return
	Reason string        // the sidecar's description, which names the address
}

func (e *DialError) Error() string {
	if e.Reason == "" {
		return "connect from pod: " + e.Errno.Error()
	}
	return e.Reason
}

// Unwrap makes errors.Is(err, syscall.ECONNREFUSED) and the like work.
func (e *DialError) Unwrap() error { return e.Errno }

// Timeout makes a pod-side timeout a net.Error-style timeout here too.
func (e *DialError) Timeout() bool { return e.Errno == syscall.ETIMEDOUT }
