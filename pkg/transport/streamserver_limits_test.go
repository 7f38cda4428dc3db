package transport

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestStreamServerPublicIDCannotTakeOver: what the session's address shows (the sidecar logs it
// for every client) is not enough to continue the session. A stream that presents it opens a
// session of its own, and the client's stream is left alone.
func TestStreamServerPublicIDCannotTakeOver(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sp := newStreamPath(ctx, t, echo)
	echoOnce(ctx, t, sp.conn, "before")

	// The client's own address is the one the server's QUIC connection reports for it.
	shown := sp.client.LocalAddr().String()
	name, ok := strings.CutPrefix(shown, "client-")
	if !ok {
		t.Fatalf("session address %q: want client-HEX", shown)
	}
	id, err := hex.DecodeString(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", sp.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	header := append([]byte(streamMagic+"\x01"), id...)
	if _, err := c.Write(appendFrame(header, []byte("junk"))); err != nil {
		t.Fatal(err)
	}

	if waitFor(time.Second, func() bool { return sp.client.Redials() > 0 }) {
		t.Fatalf("a stream presenting the logged address %s replaced the client's stream", shown)
	}
	echoOnce(ctx, t, sp.conn, "after")
}

// expectClosed says whether the server closes c within d, reading and discarding what it sends.
func expectClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// TestStreamServerCapsStreams fills the server with streams beside a working session: past
// maxStreams the oldest silent stream gives way, and once every stream has named a session, a
// new one is refused. The session goes on throughout.
func TestStreamServerCapsStreams(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	sp := newStreamPath(ctx, t, echo)
	echoOnce(ctx, t, sp.conn, "alone")

	// With the session's stream, one more than maxStreams.
	silent := make([]net.Conn, maxStreams)
	for i := range silent {
		c, err := net.Dial("tcp", sp.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent[i] = c
	}
	if !expectClosed(silent[0], 2*time.Second) {
		t.Fatalf("%d streams open beside a session: the oldest silent one is still open", len(silent))
	}
	for i, c := range silent[1:] {
		if expectClosed(c, 10*time.Millisecond) {
			t.Fatalf("silent stream %d closed; only the oldest should have been", i+1)
		}
	}
	echoOnce(ctx, t, sp.conn, "after silent streams")

	// Each remaining stream names a session of its own: the server is full of named streams.
	for _, c := range silent[1:] {
		var tok [16]byte
		rand.Read(tok[:])
		if _, err := c.Write(append([]byte(streamMagic+"\x01"), tok[:]...)); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(5*time.Second, func() bool {
		sp.server.mu.Lock()
		defer sp.server.mu.Unlock()
		return len(sp.server.sessions) == maxStreams
	}) {
		t.Fatalf("the server did not take %d sessions", maxStreams)
	}
	c, err := net.Dial("tcp", sp.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !expectClosed(c, 2*time.Second) {
		t.Fatalf("a stream past %d named ones was kept open", maxStreams)
	}
	echoOnce(ctx, t, sp.conn, "after the server is full")
	if n := sp.client.Redials(); n != 0 {
		t.Errorf("the session's client re-dialed %d times, want 0", n)
	}
}
