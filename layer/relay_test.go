package layer

import (
	"log/slog"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
)

// close ends the relays still running, whose pod side might never end by itself (a lane whose
// sidecar went silent): the supervisor's Close waits for them.
func TestRelayCloseEndsActiveRelays(t *testing.T) {
	r, err := newTCPRelay(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	program, local := testnet.TCPPair(t)
	defer program.Close()
	podEnd, silent := testnet.TCPPair(t) // the pod's side: silent never writes or closes
	defer silent.Close()
	done := make(chan struct{})
	r.start(local, podEnd, func() { close(done) })
	r.close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a relay whose pod side never ends outlived close")
	}
	r.wg.Wait()
}
