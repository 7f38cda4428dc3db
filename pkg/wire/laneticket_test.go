package wire

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewLaneTicket(t *testing.T) {
	a, err := NewLaneTicket()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewLaneTicket()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a == (LaneTicket{}) {
		t.Errorf("two new tickets %v and %v: want distinct and random", a, b)
	}
}

// TestLaneTicketNeverPrinted: however a ticket reaches a log (alone, in a LaneOpen, in a
// reply's list, through slog), no part of its bytes shows, yet one ticket always has one name.
func TestLaneTicketNeverPrinted(t *testing.T) {
	// A fixed ticket, so that the test cannot fail by chance: its name is a digest.
	var ticket LaneTicket
	for i := range ticket {
		ticket[i] = 0xa1 + byte(i)
	}
	open := LaneOpen{Ticket: ticket, Lane: 3, Kind: LaneIncoming}
	reply := LaneTicketsReply{Tickets: []LaneTicket{ticket}}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("lane", "ticket", ticket, "open", open)
	printed := []struct {
		how, s string
		named  bool // the ticket's name shows as it is (%x hex-encodes it)
	}{
		{"ticket %v", fmt.Sprintf("%v", ticket), true},
		{"ticket %x", fmt.Sprintf("%x", ticket), false},
		{"ticket %#v", fmt.Sprintf("%#v", ticket), true},
		{"open %v", fmt.Sprintf("%v", open), true},
		{"open %+v", fmt.Sprintf("%+v", open), true},
		{"open %#v", fmt.Sprintf("%#v", open), true},
		{"reply %#v", fmt.Sprintf("%#v", reply), true},
		{"slog", logged.String(), true},
	}
	secret := hex.EncodeToString(ticket[:])
	for _, p := range printed {
		how, s := p.how, p.s
		// Any 3 bytes of the ticket, in hex or as decimal bytes, would be a part shown.
		for i := 0; i+3 <= len(ticket); i++ {
			if part := secret[2*i : 2*i+6]; strings.Contains(strings.ToLower(s), part) {
				t.Errorf("%s = %q shows ticket bytes %s", how, s, part)
			}
		}
		if dec := fmt.Sprint(ticket[:3]); strings.Contains(s, strings.Trim(dec, "[]")) {
			t.Errorf("%s = %q shows ticket bytes %s", how, s, dec)
		}
		if p.named && !strings.Contains(s, ticket.String()) {
			t.Errorf("%s = %q does not name the ticket %s", how, s, ticket)
		}
	}
	if other := testTicket(1); other.String() == ticket.String() || other.String() != testTicket(1).String() {
		t.Errorf("ticket names: %s and %s for two tickets, want distinct and stable", other, ticket)
	}
}
