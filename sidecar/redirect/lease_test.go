//go:build linux

package redirect

import (
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
)

// A sidecar that dies with its guard leaves its table, but the redirects lapse with the lease it
// no longer renews, and the app answers again; a renewal brings them back.
func TestRedirectsLapseWithoutRenewal(t *testing.T) {
	n := newTestNet(t)
	n.serveAppAndSidecar(t)
	opt := nftables.WithNetNSFd(n.podFD)
	const term = 2 * time.Second
	table, err := open("lease", "remocal-abcde", term, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	if err := table.Redirect(8000, 8001); err != nil {
		t.Fatal(err)
	}
	target, redirected := podAddr+":8000", "sidecar "+podAddr+":8000"
	for i := range 6 { // renewed for longer than the term
		if got := n.ask(t, target); got != redirected {
			t.Fatalf("renewal %d: %q, want %q", i, got, redirected)
		}
		time.Sleep(term / 4)
		if err := table.Renew(); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := Inspect(table.Name(), opt); err != nil || info.Lapsed {
		t.Fatalf("renewed: Inspect = %+v, %v", info, err)
	}
	time.Sleep(term + term/2)
	if got := n.ask(t, target); got != "app" {
		t.Fatalf("lease lapsed: %q, want the app", got)
	}
	info, err := Inspect(table.Name(), opt)
	if err != nil || !info.Lapsed || info.Holder != "remocal-abcde" || !slices.Equal(info.Ports, []uint16{8000}) {
		t.Fatalf("lapsed: Inspect = %+v, %v; want lapsed, held by remocal-abcde, port 8000", info, err)
	}
	if err := table.Renew(); err != nil {
		t.Fatal(err)
	}
	if got := n.ask(t, target); got != redirected {
		t.Fatalf("renewed again: %q, want %q", got, redirected)
	}
}

// A table without a holder's name is named after itself in its rules.
func TestHolderDefaultsToTheTable(t *testing.T) {
	n := newTestNet(t)
	opt := nftables.WithNetNSFd(n.podFD)
	table, err := Open("41234", "", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	if err := table.Redirect(80, 41234); err != nil {
		t.Fatal(err)
	}
	if info, err := Inspect(table.Name(), opt); err != nil || info.Holder != "remocal_41234" || info.Lapsed {
		t.Fatalf("Inspect = %+v, %v; want held by remocal_41234, not lapsed", info, err)
	}
}
