package e2e

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// silentSource is the client address of the SYNs sendSYNs forges: on the test network, held by
// nobody. The local cluster routes the whole network onto an empty bridge, so the pod's SYN-ACKs
// find no neighbour and no RST comes back: each connection stays a SYN and nothing more.
var silentSource = netip.MustParseAddr("198.18.32.1")

// sendSYNs sends n TCP SYNs to dst, each from another port of silentSource, through a raw socket
// (the tests run as root).
func sendSYNs(t *testing.T, dst netip.AddrPort, n int) {
	t.Helper()
	if !testNetwork.Contains(dst.Addr()) || !dst.Addr().Is4() {
		t.Fatalf("%s is not an IPv4 address of the test network", dst)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		t.Skipf("a raw socket (needs CAP_NET_RAW): %v", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Addr: dst.Addr().As4()}
	for i := range n {
		if err := unix.Sendto(fd, synPacket(silentSource, dst, uint16(20000+i)), 0, to); err != nil {
			t.Fatalf("send SYN %d: %v", i, err)
		}
		if i%128 == 127 {
			// A burst larger than a CPU's receive backlog (1,000 packets) would be dropped
			// before the pod's packet socket sees it.
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// synPacket is an IPv4 packet carrying a TCP SYN from src:srcPort to dst.
func synPacket(src netip.Addr, dst netip.AddrPort, srcPort uint16) []byte {
	p := make([]byte, 40)
	ip, tcp := p[:20], p[20:]
	ip[0] = 4<<4 | 5
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(p)))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_TCP
	s, d := src.As4(), dst.Addr().As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip, 0))
	binary.BigEndian.PutUint16(tcp[0:2], srcPort)
	binary.BigEndian.PutUint16(tcp[2:4], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:8], uint32(srcPort)<<16|1) // sequence number
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:16], 65535)
	pseudo := uint32(unix.IPPROTO_TCP) + uint32(len(tcp))
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
	}
	binary.BigEndian.PutUint16(tcp[16:18], checksum(tcp, pseudo))
	return p
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// 4,096 connections that send a SYN and nothing more (issue 13) once filled the sidecar's table
// of mirrored connections for 15 minutes, and no new connection was copied: the next real
// request must still be mirrored.
func TestMirrorAfterSilentConnections(t *testing.T) {
	s := newLayerSetup(t)
	sess := startIncoming(t, s, ":8080", func(sess *incomingSession) bool {
		return strings.Contains(sess.stderr.String(), "mirroring the pod's port 8080")
	})
	defer sess.stop(syscall.SIGINT)
	pod := netip.AddrPortFrom(netip.MustParseAddr(s.echo.podIP), 8080)
	sendSYNs(t, pod, 4096)
	body := get("http://" + pod.String() + "/after-syns")
	if !strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
		t.Fatalf("answered %q, want the pod's app", body)
	}
	if !sess.got(t, "GET /after-syns", 10*time.Second) {
		t.Fatal("the request after 4,096 silent connections was not mirrored")
	}
}
