package transport

import (
	"testing"
	"time"
)

// TestTransferUDP sends 64 MiB through one stream on the direct path (loopback UDP).
func TestTransferUDP(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	conn := newUDPPath(ctx, t, hashSink)
	sendHashed(ctx, t, conn, transferSize(), 1, nil)
}

// TestTransferStreamDrops sends 64 MiB through one QUIC stream on the stream path while the TCP
// stream under it is broken three times: twice from the client's side, once from the server's
// (an apiserver restart looks like that). The transfer must complete intact on the same QUIC
// connection.
func TestTransferStreamDrops(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	sp := newStreamPath(ctx, t, hashSink)
	size := transferSize()

	drops := 0
	breakStream := func(sent int64) {
		if drops == 3 || sent < int64(drops+1)*size/4 {
			return
		}
		before := sp.client.Redials()
		if drops == 1 {
			sp.ln.last().Close()
		} else {
			sp.dialer.last().Close()
		}
		drops++
		t.Logf("broke stream %d after %d MiB sent", drops, sent>>20)
		// Wait for the new stream, so the next break hits a live one.
		if !waitFor(10*time.Second, func() bool { return sp.client.Redials() > before }) {
			t.Errorf("no re-dial after break %d", drops)
		}
	}
	start := time.Now()
	sendHashed(ctx, t, sp.conn, size, 7, breakStream)
	t.Logf("%d MiB in %v with %d breaks, %d re-dials", size>>20, time.Since(start).Round(time.Millisecond), drops, sp.client.Redials())
	if drops != 3 {
		t.Errorf("broke the stream %d times, want 3", drops)
	}
	if n := sp.client.Redials(); n < 2 {
		t.Errorf("Redials() = %d, want at least 2", n)
	}
	// The same QUIC connection goes on working.
	sendHashed(ctx, t, sp.conn, 1<<20, 8, nil)
}
