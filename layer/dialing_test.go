//go:build linux

package layer

import (
	"testing"

	"golang.org/x/sys/unix"
)

// A second connect of a socket joins its dial, and the connect that reports the end of it
// leaves the socket's next connect to the kernel.
func TestDialingsJoinAndClaim(t *testing.T) {
	var d dialings
	g, started := d.start(7, false)
	if again, startedAgain := d.start(7, false); !started || startedAgain || again != g {
		t.Fatal("a second connect of the socket did not join its dial")
	}
	d.finish(7, g, 0, unix.ECONNREFUSED)
	if joined, ok := d.of(7); !ok || joined != g {
		t.Fatal("the unreported end of the dial is gone")
	}
	if _, errno := d.claim(7, g); errno != unix.ECONNREFUSED {
		t.Fatalf("claimed %v", errno)
	}
	if _, ok := d.of(7); ok {
		t.Fatal("a reported dial is still there")
	}
}
