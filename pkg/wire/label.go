package wire

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxLabelLen bounds a session's label: a kubeconfig user name (an EKS role ARN is about 80
// bytes) or user@host fits.
const MaxLabelLen = 128

// SessionLabel names the user of a session, for the listings other users read (control
// stream, FeatureSessions). The client sends it once, right after the hello reply, and the
// sidecar sends no answer: it costs the session's start no round trip. A label that breaks
// CheckLabel does not decode, and its control stream ends as for any malformed message.
type SessionLabel struct {
	Label string
}

// Type implements Message.
func (SessionLabel) Type() Type { return TypeSessionLabel }

func (l SessionLabel) check() error { return CheckLabel(l.Label) }

func (l SessionLabel) appendPayload(b []byte) []byte { return appendString(b, l.Label) }

func parseSessionLabel(b []byte) (SessionLabel, int, error) {
	label, n, err := parseLabel(b, "session label")
	return SessionLabel{Label: label}, n, err
}

// CheckLabel reports a label that may not travel: longer than MaxLabelLen, not UTF-8, or
// with a rune that does not print (control characters, line breaks, bidirectional overrides
// and other format characters). Labels are shown on other users' terminals, so both ends
// refuse what could move the cursor, colour the text or reorder it. The empty label is the
// one an older plugin's session has.
func CheckLabel(s string) error { return checkText(s, MaxLabelLen, "label") }

func parseLabel(b []byte, field string) (string, int, error) {
	return parseText(b, MaxLabelLen, field)
}

// checkText reports a string that is longer than maxLen, not UTF-8, or has a rune that does
// not print: the rule of the strings shown as they are on a terminal.
func checkText(s string, maxLen int, field string) error {
	if err := checkString(s, maxLen, field); err != nil {
		return err
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not UTF-8", ErrMalformed, field, s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %s %q has the unprintable character %U", ErrMalformed, field, s, r)
		}
	}
	return nil
}

// parseText reads a string that must pass checkText.
func parseText(b []byte, maxLen int, field string) (string, int, error) {
	s, n, err := parseString(b, maxLen, field)
	if err != nil {
		return "", 0, err
	}
	if err := checkText(s, maxLen, field); err != nil {
		return "", 0, err
	}
	return s, n, nil
}
