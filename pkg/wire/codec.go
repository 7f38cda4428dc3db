package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// The primitives of payload encoding. Parsers work on a complete payload, so running out of
// bytes inside one is ErrMalformed, not ErrTruncated.

func parseUint8(b []byte, field string) (uint8, int, error) {
	if len(b) < 1 {
		return 0, 0, fmt.Errorf("%w: %s: need 1 byte, have 0", ErrMalformed, field)
	}
	return b[0], 1, nil
}

func parseUint16(b []byte, field string) (uint16, int, error) {
	if len(b) < 2 {
		return 0, 0, fmt.Errorf("%w: %s: need 2 bytes, have %d", ErrMalformed, field, len(b))
	}
	return binary.BigEndian.Uint16(b), 2, nil
}

func parseUint32(b []byte, field string) (uint32, int, error) {
	if len(b) < 4 {
		return 0, 0, fmt.Errorf("%w: %s: need 4 bytes, have %d", ErrMalformed, field, len(b))
	}
	return binary.BigEndian.Uint32(b), 4, nil
}

func parseUint64(b []byte, field string) (uint64, int, error) {
	if len(b) < 8 {
		return 0, 0, fmt.Errorf("%w: %s: need 8 bytes, have %d", ErrMalformed, field, len(b))
	}
	return binary.BigEndian.Uint64(b), 8, nil
}

// parseBool accepts only 0 and 1, so that each message has one encoding.
func parseBool(b []byte, field string) (bool, int, error) {
	if len(b) < 1 {
		return false, 0, fmt.Errorf("%w: %s: need 1 byte, have 0", ErrMalformed, field)
	}
	if b[0] > 1 {
		return false, 0, fmt.Errorf("%w: %s: %d is not 0 or 1", ErrMalformed, field, b[0])
	}
	return b[0] == 1, 1, nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// parseUvarint accepts only the minimal encoding, so that each message has one encoding.
func parseUvarint(b []byte, field string) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, fmt.Errorf("%w: %s: length runs past the end", ErrMalformed, field)
	case n < 0:
		return 0, 0, fmt.Errorf("%w: %s: length overflows 64 bits", ErrMalformed, field)
	case n > 1 && b[n-1] == 0:
		return 0, 0, fmt.Errorf("%w: %s: length is not minimally encoded", ErrMalformed, field)
	}
	return v, n, nil
}

// parseString checks the bound before copying, so a hostile length costs nothing.
func parseString(b []byte, maxLen int, field string) (string, int, error) {
	l, n, err := parseUvarint(b, field)
	if err != nil {
		return "", 0, err
	}
	if l > uint64(maxLen) {
		return "", 0, fmt.Errorf("%w: %s: %d bytes, max %d", ErrTooLarge, field, l, maxLen)
	}
	if l > uint64(len(b)-n) {
		return "", 0, fmt.Errorf("%w: %s: %d bytes announced, %d left", ErrMalformed, field, l, len(b)-n)
	}
	end := n + int(l)
	return string(b[n:end]), end, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// parseStrings decodes a counted list. It allocates the list only after checking the count
// against both the bound and the bytes left (each entry takes at least one), so the count alone
// cannot make us allocate. An empty list decodes as nil.
func parseStrings(b []byte, maxCount, maxLen int, field string) ([]string, int, error) {
	count, n, err := parseUvarint(b, field)
	if err != nil {
		return nil, 0, err
	}
	if count > uint64(maxCount) {
		return nil, 0, fmt.Errorf("%w: %s: %d entries, max %d", ErrTooLarge, field, count, maxCount)
	}
	if count > uint64(len(b)-n) {
		return nil, 0, fmt.Errorf("%w: %s: %d entries announced, %d bytes left", ErrMalformed, field, count, len(b)-n)
	}
	if count == 0 {
		return nil, n, nil
	}
	list := make([]string, count)
	for i := range list {
		s, m, err := parseString(b[n:], maxLen, field)
		if err != nil {
			return nil, 0, err
		}
		list[i] = s
		n += m
	}
	return list, n, nil
}

func appendStrings(b []byte, list []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, s := range list {
		b = appendString(b, s)
	}
	return b
}

func checkString(s string, maxLen int, field string) error {
	if len(s) > maxLen {
		return fmt.Errorf("%w: %s: %d bytes, max %d", ErrTooLarge, field, len(s), maxLen)
	}
	return nil
}

func checkStrings(list []string, maxCount, maxLen int, field string) error {
	if len(list) > maxCount {
		return fmt.Errorf("%w: %s: %d entries, max %d", ErrTooLarge, field, len(list), maxCount)
	}
	for i, s := range list {
		if len(s) > maxLen {
			return fmt.Errorf("%w: %s[%d]: %d bytes, max %d", ErrTooLarge, field, i, len(s), maxLen)
		}
	}
	return nil
}

// clampReason shortens a human-readable reason to its bound, on a rune boundary. Reasons are
// usually err.Error() of something deep; failing to send an error report because its text is
// long would hide the error itself, and its tail is the least useful part.
func clampReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	const ellipsis = "..."
	cut := maxReasonLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
