package wire

import (
	"encoding/binary"
	"fmt"
)

// Bounds of a RedirectsReply: a pod has a table per sidecar that ever subscribed, and each
// table a rule per subscribed port.
const (
	maxRedirectTables  = 256
	maxTableNameLen    = 64
	maxRedirectedPorts = 1024
)

// Redirects asks the sidecar for the redirect tables in the pod's network namespace (control
// stream), and to delete those of dead sidecars when Clean is set. The answer is a
// RedirectsReply, or an Error.
type Redirects struct {
	Clean bool
}

// Type implements Message.
func (Redirects) Type() Type { return TypeRedirects }

func (Redirects) check() error { return nil }

func (r Redirects) appendPayload(b []byte) []byte { return appendBool(b, r.Clean) }

func parseRedirects(b []byte) (Redirects, int, error) {
	clean, n, err := parseBool(b, "redirects clean")
	return Redirects{Clean: clean}, n, err
}

// RedirectTable is one sidecar's table of redirects.
type RedirectTable struct {
	Name    string
	Ports   []uint16 // the pod ports it redirects
	Live    bool     // its sidecar still runs
	Removed bool     // deleted by this request
}

// RedirectsReply lists the redirect tables found.
type RedirectsReply struct {
	Tables []RedirectTable
}

// Type implements Message.
func (RedirectsReply) Type() Type { return TypeRedirectsReply }

func (r RedirectsReply) check() error {
	if len(r.Tables) > maxRedirectTables {
		return fmt.Errorf("%w: redirect tables: %d, max %d", ErrTooLarge, len(r.Tables), maxRedirectTables)
	}
	for _, t := range r.Tables {
		if err := checkString(t.Name, maxTableNameLen, "redirect table name"); err != nil {
			return err
		}
		if len(t.Ports) > maxRedirectedPorts {
			return fmt.Errorf("%w: redirected ports of %s: %d, max %d", ErrTooLarge, t.Name, len(t.Ports), maxRedirectedPorts)
		}
	}
	return nil
}

func (r RedirectsReply) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Tables)))
	for _, t := range r.Tables {
		b = appendString(b, t.Name)
		b = binary.AppendUvarint(b, uint64(len(t.Ports)))
		for _, p := range t.Ports {
			b = binary.BigEndian.AppendUint16(b, p)
		}
		b = appendBool(b, t.Live)
		b = appendBool(b, t.Removed)
	}
	return b
}

// parseRedirectsReply checks each count against its bound and the bytes left before
// allocating, as parseStrings does.
func parseRedirectsReply(b []byte) (RedirectsReply, int, error) {
	count, n, err := parseCount(b, maxRedirectTables, 1, "redirect tables")
	if err != nil {
		return RedirectsReply{}, 0, err
	}
	var r RedirectsReply
	for range count {
		var t RedirectTable
		name, m, err := parseString(b[n:], maxTableNameLen, "redirect table name")
		if err != nil {
			return RedirectsReply{}, 0, err
		}
		t.Name, n = name, n+m
		ports, m, err := parseCount(b[n:], maxRedirectedPorts, 2, "redirected ports")
		if err != nil {
			return RedirectsReply{}, 0, err
		}
		n += m
		for range ports {
			p, m, err := parseUint16(b[n:], "redirected port")
			if err != nil {
				return RedirectsReply{}, 0, err
			}
			t.Ports, n = append(t.Ports, p), n+m
		}
		for _, flag := range []struct {
			to   *bool
			what string
		}{{&t.Live, "redirect table live"}, {&t.Removed, "redirect table removed"}} {
			v, m, err := parseBool(b[n:], flag.what)
			if err != nil {
				return RedirectsReply{}, 0, err
			}
			*flag.to, n = v, n+m
		}
		r.Tables = append(r.Tables, t)
	}
	return r, n, nil
}

// parseCount reads a list's count and checks it against maxCount and against the bytes left,
// each entry taking at least minSize.
func parseCount(b []byte, maxCount, minSize int, field string) (int, int, error) {
	count, n, err := parseUvarint(b, field)
	if err != nil {
		return 0, 0, err
	}
	if count > uint64(maxCount) {
		return 0, 0, fmt.Errorf("%w: %s: %d entries, max %d", ErrTooLarge, field, count, maxCount)
	}
	if count*uint64(minSize) > uint64(len(b)-n) {
		return 0, 0, fmt.Errorf("%w: %s: %d entries announced, %d bytes left", ErrMalformed, field, count, len(b)-n)
	}
	return int(count), n, nil
}
