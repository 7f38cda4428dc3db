package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCheckLabel(t *testing.T) {
	tests := []struct {
		label string
		want  error
	}{
		{"", nil},
		{"alice@laptop", nil},
		{"arn:aws:eks:eu-west-1:111122223333:cluster/dev", nil},
		{"zoë 開発", nil},
		{strings.Repeat("l", MaxLabelLen), nil},
		{strings.Repeat("l", MaxLabelLen+1), ErrTooLarge},
		{"\x1b[31mred", ErrMalformed},         // a terminal's escape
		{"alice\nbob", ErrMalformed},          // a second line
		{"alice\tbob", ErrMalformed},          // whitespace other than the space
		{"alice\u202ekcilc", ErrMalformed},    // a right-to-left override
		{"zero\u200bwidth", ErrMalformed},     // a format character
		{"bad \xff utf-8", ErrMalformed},      // not UTF-8
		{"nul\x00", ErrMalformed},             //
		{"del\x7f", ErrMalformed},             //
		{"c1 \u0085 next line", ErrMalformed}, // a C1 control
	}
	for _, tt := range tests {
		if err := CheckLabel(tt.label); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("CheckLabel(%q) = %v, want %v", tt.label, err, tt.want)
		}
	}
}

// TestSessionsDecodeRefuses: what a hostile peer sends in a label, a sidecar name or a mode
// does not decode, and the bounds hold before anything is allocated.
func TestSessionsDecodeRefuses(t *testing.T) {
	str := func(s string) []byte { return cat(uv(uint64(len(s))), []byte(s)) }
	session := func(sidecar, label string) []byte {
		return cat(str(sidecar), str(label), make([]byte, 8), str("c"), []byte{0}, uv(0))
	}
	port := func(mode string) []byte { return cat([]byte{0, 80}, str(mode), uv(0), uv(0), []byte{0}) }
	tests := []struct {
		name    string
		typ     Type
		payload []byte
		want    error
	}{
		{name: "label with an escape", typ: TypeSessionLabel, payload: str("\x1b]0;title\x07"), want: ErrMalformed},
		{name: "label not utf-8", typ: TypeSessionLabel, payload: str("\xc3"), want: ErrMalformed},
		{name: "label too long", typ: TypeSessionLabel, payload: str(strings.Repeat("l", MaxLabelLen+1)), want: ErrTooLarge},
		{name: "label well formed", typ: TypeSessionLabel, payload: str("bob@host"), want: nil},
		{name: "sessions with a payload", typ: TypeSessions, payload: []byte{0}, want: ErrMalformed},
		{name: "sessions over the bound", typ: TypeSessionsReply, payload: uv(maxListedSessions + 1), want: ErrTooLarge},
		{name: "sessions past the end", typ: TypeSessionsReply, payload: cat(uv(2), session("s", "l")), want: ErrMalformed},
		{name: "session label with a line break", typ: TypeSessionsReply, payload: cat(uv(1), session("s", "a\nb")), want: ErrMalformed},
		{name: "session sidecar with an escape", typ: TypeSessionsReply, payload: cat(uv(1), session("\x1b[2J", "l")), want: ErrMalformed},
		{name: "session sidecar too long", typ: TypeSessionsReply, payload: cat(uv(1), session(strings.Repeat("s", maxSidecarNameLen+1), "l")), want: ErrTooLarge},
		{name: "session mine of 2", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 8), str("c"), []byte{2}, uv(0)), want: ErrMalformed},
		{name: "session without since", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 7)), want: ErrMalformed},
		{name: "session ports over the bound", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 8), str("c"), []byte{0}, uv(maxSessionPorts+1)), want: ErrTooLarge},
		{name: "session ports past the end", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 8), str("c"), []byte{0}, uv(2), port("steal")), want: ErrMalformed},
		{name: "session port mode with an escape", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 8), str("c"), []byte{0}, uv(1), port("st\x1beal")), want: ErrMalformed},
		{name: "session port capture of 2", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 8), str("c"), []byte{0}, uv(1), []byte{0, 80}, str("steal"), uv(0), uv(0), []byte{2}), want: ErrMalformed},
		{name: "session well formed", typ: TypeSessionsReply, payload: cat(uv(1), str("s"), str("l"), make([]byte, 8), str("c"), []byte{1}, uv(1), port("steal")), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := ParseMessage(frame(tt.typ, tt.payload))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ParseMessage: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("ParseMessage = %#v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

// TestSessionsEncodeRefuses: what the other end would refuse is never sent.
func TestSessionsEncodeRefuses(t *testing.T) {
	over := func(n int) string { return strings.Repeat("x", n+1) }
	tests := []struct {
		name string
		msg  Message
		want error
	}{
		{name: "label with an escape", msg: SessionLabel{Label: "\x1b[31m"}, want: ErrMalformed},
		{name: "label too long", msg: SessionLabel{Label: over(MaxLabelLen)}, want: ErrTooLarge},
		{name: "too many sessions", msg: SessionsReply{Sessions: make([]SessionInfo, maxListedSessions+1)}, want: ErrTooLarge},
		{name: "session label with a line break", msg: SessionsReply{Sessions: []SessionInfo{{Label: "a\nb"}}}, want: ErrMalformed},
		{name: "session sidecar too long", msg: SessionsReply{Sessions: []SessionInfo{{Sidecar: over(maxSidecarNameLen)}}}, want: ErrTooLarge},
		{name: "session client too long", msg: SessionsReply{Sessions: []SessionInfo{{Client: over(maxAddressLen)}}}, want: ErrTooLarge},
		{name: "session ports over the bound", msg: SessionsReply{Sessions: []SessionInfo{{Ports: make([]SessionPort, maxSessionPorts+1)}}}, want: ErrTooLarge},
		{name: "session port mode unprintable", msg: SessionsReply{Sessions: []SessionInfo{{Ports: []SessionPort{{Mode: "\x00"}}}}}, want: ErrMalformed},
		{name: "session port filter too long", msg: SessionsReply{Sessions: []SessionInfo{{Ports: []SessionPort{{Path: over(MaxFilterLen)}}}}}, want: ErrTooLarge},
		{name: "sessions over a frame", msg: SessionsReply{Sessions: []SessionInfo{{Ports: repeatSessionPorts(maxSessionPorts, strings.Repeat("h", MaxFilterLen))}}}, want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			b, err := AppendMessage(bytes.Clone(prefix), tt.msg)
			if !errors.Is(err, tt.want) || !bytes.Equal(b, prefix) {
				t.Fatalf("AppendMessage = %q, %v; want the buffer unchanged and %v", b, err, tt.want)
			}
		})
	}
}

func repeatSessionPorts(n int, header string) []SessionPort {
	ports := make([]SessionPort, n)
	for i := range ports {
		ports[i] = SessionPort{Port: uint16(i), Mode: ModeSteal, Header: header}
	}
	return ports
}
