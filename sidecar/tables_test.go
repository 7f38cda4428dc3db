package sidecar

import (
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A second sidecar of the pod is refused a port the first redirects, and told which sidecar
// holds it, until the first gives it up.
func TestPortRedirectedByAnotherSidecarIsRefused(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	first, second := newIncoming(slog.New(slog.DiscardHandler), "remocal-first"), newIncoming(slog.New(slog.DiscardHandler), "remocal-second")
	defer first.close()
	defer second.close()
	alice, _ := quicPair(t)
	bob, _ := quicPair(t)
	steal := wire.Subscribe{Port: 8000, Mode: wire.ModeSteal}
	if err := first.subscribe(t.Context(), alice, "", steal); err != nil {
		t.Fatal(err)
	}
	err := second.subscribe(t.Context(), bob, "", steal)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "remocal-first") {
		t.Fatalf("second sidecar's steal: %v; want EADDRINUSE naming remocal-first", err)
	}
	if err := second.subscribe(t.Context(), bob, "", wire.Subscribe{Port: 8001, Mode: wire.ModeSteal}); err != nil {
		t.Fatalf("another port: %v", err)
	}
	if err := first.unsubscribe(alice, 8000); err != nil {
		t.Fatal(err)
	}
	if err := second.subscribe(t.Context(), bob, "", steal); err != nil {
		t.Fatalf("once the first gave the port up: %v", err)
	}
}
