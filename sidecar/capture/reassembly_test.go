package capture

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
	"time"
)

// sink is a copy as the assembler writes it.
type sink struct {
	bytes.Buffer
	closed bool
}

func (s *sink) Close() error { s.closed = true; return nil }

func flow(clientPort uint16) Flow {
	return Flow{Client: netip.AddrPortFrom(netip.MustParseAddr("198.18.64.1"), clientPort), Server: netip.MustParseAddrPort("198.18.64.2:8080")}
}

func newTestAssembler() (*assembler, map[Flow]*sink) {
	sinks := map[Flow]*sink{}
	return newAssembler(func(f Flow) io.WriteCloser {
		s := &sink{}
		sinks[f] = s
		return s
	}), sinks
}

func TestSegmentsInOrderOutOfOrderAndAgain(t *testing.T) {
	a, sinks := newTestAssembler()
	f, now := flow(40000), time.Now()
	const isn = 0xfffffff0 // the sequence numbers wrap inside the connection
	a.segment(f, isn, flagSYN, nil, now)
	a.segment(f, isn, flagSYN, nil, now) // the SYN again
	data := []byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
	at := func(i int) uint32 { return isn + 1 + uint32(i) }
	a.segment(f, at(20), flagACK, data[20:30], now) // after a hole
	a.segment(f, at(0), flagACK, data[0:10], now)
	a.segment(f, at(5), flagACK, data[5:15], now) // overlaps what was written
	a.segment(f, at(0), flagACK, data[0:10], now) // a retransmission
	a.segment(f, at(40), flagACK|flagFIN, data[40:], now)
	if s := sinks[f]; s.closed || s.String() != string(data[:15]) {
		t.Fatalf("before the holes are filled: %q, closed %v", s.String(), s.closed)
	}
	a.segment(f, at(15), flagACK, data[15:25], now)
	a.segment(f, at(30), flagACK, data[30:40], now)
	if s := sinks[f]; !s.closed || s.String() != string(data) {
		t.Fatalf("got %q, closed %v; want %q, closed", s.String(), s.closed, data)
	}
	if len(a.flows) != 0 {
		t.Fatalf("flows left: %d", len(a.flows))
	}
}

// A SYN alone (a scan, a flood, a handshake never completed) costs no copy, and a table full
// of silent connections gives way to a connection that sends: 4,096 SYNs must not switch the
// mirror off.
func TestSilentConnectionsGiveWay(t *testing.T) {
	a, sinks := newTestAssembler()
	now := time.Now()
	for i := range maxFlows + 10 {
		a.segment(flow(uint16(1000+i)), 1, flagSYN, nil, now)
	}
	if len(sinks) != 0 || len(a.flows) != maxFlows {
		t.Fatalf("%d copies opened, %d flows followed; want 0 and %d", len(sinks), len(a.flows), maxFlows)
	}
	if _, ok := a.flows[flow(1000)]; ok {
		t.Fatal("the oldest silent connection did not give way")
	}
	client := flow(60000)
	a.segment(client, 7, flagSYN, nil, now)
	a.segment(client, 8, flagACK, []byte("GET / HTTP/1.1\r\n\r\n"), now)
	if s := sinks[client]; s == nil || s.String() != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("a connection after 4,096 silent ones was not copied: %+v", s)
	}
	// A copy gives way only when no silent connection is left to.
	for i := range maxFlows {
		a.segment(flow(uint16(1+i)), 1, flagSYN, nil, now)
	}
	if sinks[client].closed {
		t.Fatal("a copy gave way to silent connections")
	}
}

// A connection that sends nothing is followed for seconds, not for the 15 minutes of a copy.
func TestSilentConnectionsExpire(t *testing.T) {
	a, sinks := newTestAssembler()
	now := time.Now()
	silent, copying := flow(40010), flow(40011)
	a.segment(silent, 1, flagSYN, nil, now)
	a.segment(copying, 1, flagSYN, nil, now)
	a.segment(copying, 2, flagACK, []byte("x"), now)
	a.expire(now.Add(silentIdle + time.Second))
	if _, ok := a.flows[silent]; ok {
		t.Fatal("a silent connection outlived silentIdle")
	}
	if _, ok := a.flows[copying]; !ok || sinks[copying].closed {
		t.Fatal("a copy ended after silentIdle")
	}
	a.segment(silent, 2, flagACK, []byte("late"), now.Add(silentIdle+2*time.Second))
	if sinks[silent] != nil {
		t.Fatal("a connection no longer followed was copied from its middle")
	}
}

func TestConnectionsWithoutTheirSYNAreNotCopied(t *testing.T) {
	a, sinks := newTestAssembler()
	a.segment(flow(40001), 1000, flagACK, []byte("midway"), time.Now())
	if len(sinks) != 0 {
		t.Fatal("a connection open before the capture was copied")
	}
}

func TestResetAndIdleEndTheCopy(t *testing.T) {
	a, sinks := newTestAssembler()
	now := time.Now()
	reset, idle := flow(40002), flow(40003)
	a.segment(reset, 1, flagSYN, nil, now)
	a.segment(reset, 2, flagACK, []byte("x"), now)
	a.segment(reset, 3, flagRST, nil, now)
	a.segment(idle, 1, flagSYN, nil, now)
	a.segment(idle, 2, flagACK, []byte("y"), now)
	a.expire(now.Add(flowIdle + time.Second))
	if !sinks[reset].closed || sinks[reset].String() != "x" || !sinks[idle].closed {
		t.Fatalf("reset %+v, idle %+v", sinks[reset], sinks[idle])
	}
}

func TestAHoleNeverFilledGivesUpTheCopy(t *testing.T) {
	a, sinks := newTestAssembler()
	f, now := flow(40004), time.Now()
	a.segment(f, 0, flagSYN, nil, now)
	chunk := make([]byte, 64<<10)
	for i := range maxPendingBytes/len(chunk) + 1 {
		a.segment(f, 100+uint32(i*len(chunk)), flagACK, chunk, now) // byte 1 never comes
	}
	if !sinks[f].closed || len(a.flows) != 0 {
		t.Fatal("the copy held more than its bound")
	}
}
