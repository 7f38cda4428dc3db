package httpfilter

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// bodyKind says how a message body ends (RFC 9112 section 6).
type bodyKind int

const (
	bodyNone       bodyKind = iota
	bodyLength              // framing.length bytes
	bodyChunked             // chunked transfer coding, up to its last chunk and trailers
	bodyUntilClose          // everything until the sender closes the connection
)

// framing is where a message body ends.
type framing struct {
	kind   bodyKind
	length int64
}

// requestFraming returns the framing of req's body. Requests whose framing the upstream might
// read differently from us are refused: we forward the raw bytes, so a disagreement would
// make the upstream see a different request than the one we routed (request smuggling).
func requestFraming(req *requestHead) (framing, error) {
	te, hasTE := req.header["Transfer-Encoding"]
	cl, hasCL := req.header["Content-Length"]
	switch {
	case hasTE && hasCL:
		return framing{}, malformed("both Transfer-Encoding and Content-Length")
	case hasTE:
		if req.major == 1 && req.minor == 0 {
			return framing{}, malformed("Transfer-Encoding in an HTTP/1.0 request")
		}
		if !chunkedLast(te) {
			return framing{}, malformed("request Transfer-Encoding %q is not chunked", te)
		}
		return framing{kind: bodyChunked}, nil
	case hasCL:
		n, err := parseContentLength(cl)
		if err != nil || n == 0 {
			return framing{}, err
		}
		return framing{kind: bodyLength, length: n}, nil
	}
	return framing{}, nil
}

// responseFraming returns the framing of the body of resp, the final response to req. It is
// not called for tunnels (101, 2xx to CONNECT), whose bytes after the head are not a body.
func responseFraming(req *requestHead, resp *responseHead) (framing, error) {
	if req.method == http.MethodHead || resp.status < 200 ||
		resp.status == http.StatusNoContent || resp.status == http.StatusNotModified {
		return framing{}, nil
	}
	te, hasTE := resp.header["Transfer-Encoding"]
	cl, hasCL := resp.header["Content-Length"]
	switch {
	case hasTE && hasCL:
		// RFC 9112 lets Transfer-Encoding win, but a relay would have to drop Content-Length
		// to stay unambiguous, and we forward heads unchanged.
		return framing{}, malformed("both Transfer-Encoding and Content-Length")
	case hasTE && chunkedLast(te):
		return framing{kind: bodyChunked}, nil
	case hasTE:
		return framing{kind: bodyUntilClose}, nil
	case hasCL:
		n, err := parseContentLength(cl)
		if err != nil {
			return framing{}, err
		}
		return framing{kind: bodyLength, length: n}, nil
	}
	return framing{kind: bodyUntilClose}, nil
}

// isTunnel reports whether, after resp, the connection carries raw bytes both ways.
func isTunnel(req *requestHead, resp *responseHead) bool {
	return resp.status == http.StatusSwitchingProtocols ||
		(req.method == http.MethodConnect && resp.status/100 == 2)
}

// chunkedLast reports whether chunked is the last transfer coding, and applied only once
// (RFC 9112 section 6.1).
func chunkedLast(fieldValues []string) bool {
	codings := strings.Split(strings.Join(fieldValues, ","), ",")
	for i, c := range codings {
		chunked := strings.EqualFold(textproto.TrimString(c), "chunked")
		if chunked != (i == len(codings)-1) {
			return false
		}
	}
	return true
}

// parseContentLength parses the Content-Length field values. Repeated values are accepted if
// they are all equal (RFC 9110 section 8.6).
func parseContentLength(fieldValues []string) (int64, error) {
	var first string
	for i, v := range strings.Split(strings.Join(fieldValues, ","), ",") {
		v = textproto.TrimString(v)
		if i == 0 {
			first = v
		} else if v != first {
			return 0, malformed("conflicting Content-Length values %q", fieldValues)
		}
	}
	if first == "" || strings.TrimLeft(first, "0123456789") != "" {
		return 0, malformed("Content-Length %q", first)
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, malformed("Content-Length %q", first)
	}
	return n, nil
}
