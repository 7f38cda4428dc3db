package sidecar

import (
	"log/slog"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// TestTicketsOfAnEndedSession: a session's tickets open no lane once it ended, but until they
// expire they are told from a stranger's (the client's own opens in flight as it left, closed
// without a warning); expired tickets are swept when a session ends.
func TestTicketsOfAnEndedSession(t *testing.T) {
	const ttl = time.Minute
	srv := newServer(Config{LaneTicketTTL: ttl}, slog.New(slog.DiscardHandler))
	ls := srv.lanes
	alice, _ := quicPair(t)
	bob, _ := quicPair(t)
	aliceLanes, bobLanes := &laneSession{}, &laneSession{}
	ls.sessions[alice], ls.sessions[bob] = aliceLanes, bobLanes
	aliceTickets := ls.issue(aliceLanes, 3).Tickets
	bobTickets := ls.issue(bobLanes, 2).Tickets
	if len(aliceTickets) != 3 || len(bobTickets) != 2 {
		t.Fatalf("issued %d and %d tickets, want 3 and 2", len(aliceTickets), len(bobTickets))
	}
	if sess, ended := ls.redeem(aliceTickets[0]); sess != aliceLanes || ended {
		t.Fatalf("a live session's ticket redeemed as (%p, %t), want (%p, false)", sess, ended, aliceLanes)
	}

	ls.forget(alice, aliceLanes)
	for _, ticket := range aliceTickets[1:] {
		if it := ls.tickets[ticket]; it.sess != nil {
			t.Error("an ended session's ticket still holds its session")
		}
	}
	if sess, ended := ls.redeem(aliceTickets[1]); sess != nil || !ended {
		t.Errorf("an ended session's ticket redeemed as (%p, %t), want (nil, true)", sess, ended)
	}
	if sess, ended := ls.redeem(aliceTickets[1]); sess != nil || ended {
		t.Errorf("an ended session's used ticket redeemed as (%p, %t), want (nil, false)", sess, ended)
	}
	if sess, ended := ls.redeem(wire.LaneTicket{1}); sess != nil || ended {
		t.Errorf("a stranger's ticket redeemed as (%p, %t), want (nil, false)", sess, ended)
	}
	if sess, ended := ls.redeem(bobTickets[0]); sess != bobLanes || ended {
		t.Errorf("another session's ticket redeemed as (%p, %t), want (%p, false)", sess, ended, bobLanes)
	}

	// Once expired, the ended session's last ticket goes when the next session ends.
	it := ls.tickets[aliceTickets[2]]
	it.expires = time.Now().Add(-time.Second)
	ls.tickets[aliceTickets[2]] = it
	ls.forget(bob, bobLanes)
	if _, kept := ls.tickets[aliceTickets[2]]; kept {
		t.Error("an expired ticket of an ended session is still kept")
	}
	if sess, ended := ls.redeem(aliceTickets[2]); sess != nil || ended {
		t.Errorf("an expired ticket redeemed as (%p, %t), want (nil, false)", sess, ended)
	}
}
