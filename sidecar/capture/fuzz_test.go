package capture

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// FuzzParseTCP feeds the packet parser whatever a packet socket could hand it: it must never
// panic, and what it reports must be read from inside the packet.
func FuzzParseTCP(f *testing.F) {
	f.Add(tcpPacket{dstPort: 8080, flags: flagSYN}.bytes())
	f.Add(tcpPacket{dstPort: 8080, flags: flagACK, payload: 18, ipOptions: 4, tcpOptions: 12}.bytes())
	f.Add(tcpPacket{v6: true, dstPort: 8080, flags: flagACK | flagFIN, payload: 1}.bytes())
	f.Add([]byte{0x45})
	f.Add([]byte{0x60, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		flow, _, _, payload, ok := parseTCP(p)
		if !ok {
			return
		}
		if len(payload) > len(p) {
			t.Fatalf("payload of %d bytes from a packet of %d", len(payload), len(p))
		}
		if len(payload) > 0 && !bytes.Contains(p, payload) {
			t.Fatalf("payload %x is not in the packet", payload)
		}
		if !flow.Client.IsValid() || !flow.Server.IsValid() {
			t.Fatalf("flow %v from a packet parsed as valid", flow)
		}
	})
}

// fuzzSink is a copy that checks the assembler's use of it: bytes only before Close, Close
// once.
type fuzzSink struct {
	t      *testing.T
	got    bytes.Buffer
	closed bool
}

func (s *fuzzSink) Write(p []byte) (int, error) {
	if s.closed {
		s.t.Fatalf("write of %d bytes after Close", len(p))
	}
	return s.got.Write(p)
}

func (s *fuzzSink) Close() error {
	if s.closed {
		s.t.Fatal("Close twice")
	}
	s.closed = true
	return nil
}

// FuzzAssembler replays segments the fuzzer cuts, in any order, with any flags, again and
// overlapping, from one client's byte stream (and from a few other clients): each copy must be
// a prefix of what its client sent, never bytes it did not send, whatever the capture saw.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte("GET /a HTTP/1.1\r\n\r\n"), []byte{0, 0, 0, flagSYN, 0, 0, 0, 5, flagACK, 0, 0, 5, 20, flagACK | flagFIN, 0})
	f.Add([]byte("hello world"), []byte{1, 0, 0, flagSYN, 0, 1, 6, 5, flagACK, 1, 1, 0, 6, flagACK, 2, 2, 0, 0, flagRST, 8})
	f.Add([]byte{}, []byte{0, 0xff, 0xff, flagSYN | flagACK, 0xff})
	f.Fuzz(func(t *testing.T, sent, script []byte) {
		sinks := map[Flow]*fuzzSink{}
		a := newAssembler(func(fl Flow) io.WriteCloser {
			if s := sinks[fl]; s != nil && !s.closed {
				t.Fatalf("flow %v opened again while its copy is open", fl)
			}
			s := &fuzzSink{t: t}
			sinks[fl] = s
			return s
		})
		const isn = 0xfffffff0 // sequence numbers wrap inside the stream
		now := time.Unix(0, 0)
		// Each step is 5 bytes: the client (of 4), the offset and length of the segment in
		// sent (one byte each, so segments stay short and overlap often), its flags, and a
		// byte of which the low bits move the clock.
		for len(script) >= 5 {
			client, off, n, flags, tick := script[0]%4, int(script[1]), int(script[2]), script[3], script[4]
			script = script[5:]
			now = now.Add(time.Duration(tick&7) * time.Minute)
			syn := flags&flagSYN != 0 && flags&flagACK == 0 // a client's SYN; a SYN-ACK is not one
			if syn {
				off = 0 // a SYN's data (TCP Fast Open) starts the stream
			}
			off = min(off, len(sent))
			n = min(n, len(sent)-off)
			seq := uint32(isn) + 1 + uint32(off)
			if syn {
				seq = isn
			}
			a.segment(flow(40000+uint16(client)), seq, flags, sent[off:off+n], now)
			if tick&8 != 0 {
				a.expire(now)
			}
		}
		a.close()
		for fl, s := range sinks {
			if !bytes.HasPrefix(sent, s.got.Bytes()) {
				t.Fatalf("copy of %v is %q, not a prefix of what the client sent, %q", fl, s.got.Bytes(), sent)
			}
			if !s.closed {
				t.Fatalf("copy of %v still open after close", fl)
			}
		}
	})
}
