package httpfilter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// maxHeadBytes bounds a message head (start line and header fields), like the 64 KiB many
// servers accept; a bigger request head is refused with 431.
const maxHeadBytes = 64 << 10

var (
	// errHeadTooLarge reports a head over maxHeadBytes.
	errHeadTooLarge = errors.New("message head too large")
	// errMalformed marks a message we cannot frame or parse. Every error wrapping it from a
	// request means the client gets 400.
	errMalformed = errors.New("malformed HTTP message")
)

// malformed returns an error wrapping errMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// head is a message head as received. The raw bytes are what we forward: net/http's
// ReadRequest and ReadResponse would parse the same fields but not give back the exact bytes,
// and re-serialising a request (header order, case, spacing) is not what a transparent
// relay should do.
type head struct {
	raw          []byte
	major, minor int
	header       textproto.MIMEHeader
}

// requestHead is a parsed request head.
type requestHead struct {
	head
	method, target string
	path           string // see Filter.Path
	rawQuery       string // the target's query, without the '?'
}

// responseHead is a parsed response head.
type responseHead struct {
	head
	status int
}

// persistent reports whether the sender of h wants to keep the connection open after this
// message (RFC 9112 section 9.3).
func (h *head) persistent() bool {
	conn := h.header["Connection"]
	if httpguts.HeaderValuesContainsToken(conn, "close") {
		return false
	}
	if h.major == 1 && h.minor == 0 {
		return httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	}
	return true
}

// readRequestHead reads and parses the next request head. It returns io.EOF if the client
// closed the connection before sending any byte of it.
func readRequestHead(r *bufio.Reader) (*requestHead, error) {
	raw, err := readHead(r, true)
	if err != nil {
		return nil, err
	}
	first, fields := splitFirstLine(raw)
	method, rest, ok1 := strings.Cut(first, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !httpguts.ValidHeaderFieldName(method) || !validTarget(target) {
		return nil, malformed("request line %q", first)
	}
	req := &requestHead{method: method, target: target}
	req.raw = raw
	if req.major, req.minor, err = parseVersion(proto); err != nil {
		return nil, err
	}
	if req.path, req.rawQuery, err = requestPath(method, target); err != nil {
		return nil, err
	}
	if req.header, err = parseFields(fields); err != nil {
		return nil, err
	}
	return req, nil
}

// readResponseHead reads and parses the next response head.
func readResponseHead(r *bufio.Reader) (*responseHead, error) {
	raw, err := readHead(r, false)
	if err != nil {
		return nil, err
	}
	first, fields := splitFirstLine(raw)
	proto, rest, _ := strings.Cut(first, " ")
	code, _, _ := strings.Cut(rest, " ")
	resp := &responseHead{}
	resp.raw = raw
	if resp.major, resp.minor, err = parseVersion(proto); err != nil {
		return nil, err
	}
	if len(code) != 3 {
		return nil, malformed("status line %q", first)
	}
	if resp.status, err = strconv.Atoi(code); err != nil || resp.status < 100 {
		return nil, malformed("status line %q", first)
	}
	if resp.header, err = parseFields(fields); err != nil {
		return nil, err
	}
	return resp, nil
}

// readHead reads a head up to and including its empty line, at most maxHeadBytes. Empty
// lines before a request line are skipped (RFC 9112 section 2.2) but count towards the limit.
func readHead(r *bufio.Reader, skipEmpty bool) ([]byte, error) {
	var raw []byte
	budget := maxHeadBytes
	for {
		line, err := readLine(r, budget)
		if err != nil {
			if errors.Is(err, io.EOF) && (len(raw) > 0 || budget < maxHeadBytes) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		budget -= len(line)
		empty := isEmptyLine(line)
		switch {
		case empty && len(raw) == 0 && skipEmpty:
			continue
		case empty && len(raw) == 0:
			return nil, malformed("empty start line")
		}
		raw = append(raw, line...)
		if empty {
			return raw, nil
		}
	}
}

// readLine reads one line including its "\n", refusing lines longer than limit with
// errHeadTooLarge. It returns io.EOF only if the input ended before the line's first byte.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, errHeadTooLarge
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

func isEmptyLine(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

// splitFirstLine returns raw's first line without its line ending, and the rest.
func splitFirstLine(raw []byte) (string, []byte) {
	i := bytes.IndexByte(raw, '\n')
	return string(bytes.TrimSuffix(raw[:i], []byte("\r"))), raw[i+1:]
}

// parseFields parses header field lines ending with an empty line. Obsolete line folding is
// refused (RFC 9112 section 5.2 allows it): textproto would unfold it, and the upstream,
// which receives the raw bytes, might not agree with us on what the fields are.
func parseFields(fields []byte) (textproto.MIMEHeader, error) {
	for line := range bytes.Lines(fields) {
		if line[0] == ' ' || line[0] == '\t' {
			return nil, malformed("obsolete line folding")
		}
	}
	header, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(fields))).ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return header, nil
}

// parseVersion parses "HTTP/1.0" or "HTTP/1.1"; other versions cannot be relayed as HTTP/1.
func parseVersion(proto string) (major, minor int, err error) {
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok || major != 1 {
		return 0, 0, malformed("HTTP version %q", proto)
	}
	return major, minor, nil
}

// validTarget reports whether target is a non-empty run of visible ASCII characters.
func validTarget(target string) bool {
	if target == "" {
		return false
	}
	for i := range len(target) {
		if target[i] <= ' ' || target[i] >= 0x7f {
			return false
		}
	}
	return true
}

// requestPath returns the path Filter.Path matches for a request target, and its query.
func requestPath(method, target string) (path, rawQuery string, err error) {
	if method == http.MethodConnect || target == "*" {
		return "", "", nil // authority-form and asterisk-form have no path
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", "", fmt.Errorf("%w: request target: %w", errMalformed, err)
	}
	return u.EscapedPath(), u.RawQuery, nil
}

// filtered is what a Filter sees of req.
func (req *requestHead) filtered() *request {
	return &request{method: req.method, header: req.header, path: req.path, rawQuery: req.rawQuery}
}
