//go:build linux

package layer

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseInet reads sockaddrs as a traced program may pass them (any bytes, any length): the
// parser must never panic, and what it accepts must encode back to the same address.
func FuzzParseInet(f *testing.F) {
	f.Add(encodeInet(unix.AF_INET, netip.MustParseAddrPort("198.18.0.1:80")))
	f.Add(encodeInet(unix.AF_INET6, netip.MustParseAddrPort("[2001:2::1]:443")))
	f.Add(encodeInet(unix.AF_INET6, netip.MustParseAddrPort("[::ffff:198.18.0.1]:53")))
	f.Add([]byte{unix.AF_INET, 0})
	f.Add(make([]byte, maxSockaddr))
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, ok := parseInet(b)
		if !ok {
			return
		}
		fam := binary.NativeEndian.Uint16(b)
		again, ok := parseInet(encodeInet(fam, ap))
		if !ok {
			t.Fatalf("%v, parsed from %x, does not parse once encoded", ap, b)
		}
		// encodeInet writes no scope id: compare without the zone.
		if again.Addr().WithZone("") != ap.Addr().WithZone("") || again.Port() != ap.Port() {
			t.Fatalf("%x parses as %v, which encodes and parses as %v", b, ap, again)
		}
		// sockaddr_in's family, port and address, before its padding, encode as they were.
		if fam == unix.AF_INET && !bytes.Equal(b[:8], encodeInet(fam, ap)[:8]) {
			t.Fatalf("%x parses as %v, which encodes differently", b[:8], ap)
		}
	})
}
