package capture

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// tcpPacket is an IP packet carrying a TCP segment: ipOptions and tcpOptions add bytes of
// options to the headers' lengths.
type tcpPacket struct {
	v6                    bool
	proto                 byte
	dstPort               uint16
	flags                 byte
	payload               int
	ipOptions, tcpOptions int
	laterFragment         bool
}

func (p tcpPacket) bytes() []byte {
	tcp := make([]byte, 20+p.tcpOptions+p.payload)
	binary.BigEndian.PutUint16(tcp[0:2], 40000)
	binary.BigEndian.PutUint16(tcp[2:4], p.dstPort)
	tcp[12] = byte((20+p.tcpOptions)/4) << 4
	tcp[13] = p.flags
	proto := p.proto
	if proto == 0 {
		proto = unix.IPPROTO_TCP
	}
	if p.v6 {
		ip := make([]byte, 40)
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:6], uint16(len(tcp)))
		ip[6] = proto
		return append(ip, tcp...)
	}
	ip := make([]byte, 20+p.ipOptions)
	ip[0] = 4<<4 | byte(len(ip)/4)
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)+len(tcp)))
	if p.laterFragment {
		binary.BigEndian.PutUint16(ip[6:8], 185)
	}
	ip[9] = proto
	return append(ip, tcp...)
}

// The filter keeps what the assembler needs of the port's packets (a payload, a SYN, a FIN, a
// RST) and nothing else: pure ACKs, other ports and protocols, later fragments. (x/net/bpf's VM
// cannot run the packet type check that filterProgram puts first; TestCaptureCopiesWhatClientsSend
// sees loopback's packets, each of which passes once out and once in.)
func TestFilterKeepsWhatTheCopyNeeds(t *testing.T) {
	const port = 8080
	if _, err := bpf.Assemble(filterProgram([]uint16{port})); err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(tcpFilter([]uint16{port}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		for _, c := range []struct {
			name string
			p    tcpPacket
			keep bool
		}{
			{"SYN", tcpPacket{flags: flagSYN}, true},
			{"pure ACK", tcpPacket{flags: flagACK}, false},
			{"pure ACK with TCP options", tcpPacket{flags: flagACK, tcpOptions: 12}, false},
			{"one byte", tcpPacket{flags: flagACK, payload: 1}, true},
			{"data with TCP options", tcpPacket{flags: flagACK, payload: 100, tcpOptions: 12}, true},
			{"FIN", tcpPacket{flags: flagFIN | flagACK}, true},
			{"RST", tcpPacket{flags: flagRST}, true},
			{"data to another port", tcpPacket{dstPort: port + 1, flags: flagACK, payload: 100}, false},
			{"SYN to another port", tcpPacket{dstPort: port + 1, flags: flagSYN}, false},
			{"UDP", tcpPacket{proto: unix.IPPROTO_UDP, payload: 100}, false},
		} {
			p := c.p
			p.v6 = v6
			if p.dstPort == 0 {
				p.dstPort = port
			}
			got, err := vm.Run(p.bytes())
			if err != nil {
				t.Fatalf("v6=%v %s: %v", v6, c.name, err)
			}
			if (got > 0) != c.keep {
				t.Errorf("v6=%v %s: kept %d bytes, want kept=%v", v6, c.name, got, c.keep)
			}
		}
	}
	for _, c := range []struct {
		name string
		p    tcpPacket
		keep bool
	}{
		{"IPv4 options, pure ACK", tcpPacket{flags: flagACK, ipOptions: 8}, false},
		{"IPv4 options, data", tcpPacket{flags: flagACK, ipOptions: 8, payload: 10}, true},
		{"IPv4 later fragment", tcpPacket{flags: flagSYN, laterFragment: true}, false},
	} {
		p := c.p
		p.dstPort = port
		got, err := vm.Run(p.bytes())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (got > 0) != c.keep {
			t.Errorf("%s: kept %d bytes, want kept=%v", c.name, got, c.keep)
		}
	}
}

// One filter takes every captured port, up to maxPorts, and keeps the packets of those alone.
func TestFilterKeepsEveryPortGiven(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, maxPorts} {
		ports := make([]uint16, n)
		for i := range ports {
			ports[i] = uint16(9000 + 10*i)
		}
		if _, err := bpf.Assemble(filterProgram(ports)); err != nil {
			t.Fatalf("%d ports: %v", n, err)
		}
		vm, err := bpf.NewVM(tcpFilter(ports))
		if err != nil {
			t.Fatalf("%d ports: %v", n, err)
		}
		for port := uint16(8990); port < 9000+10*maxPorts; port++ {
			want := port >= 9000 && port%10 == 0 && int(port-9000)/10 < n
			for _, v6 := range []bool{false, true} {
				for _, p := range []tcpPacket{
					{v6: v6, dstPort: port, flags: flagACK, payload: 1},
					{v6: v6, dstPort: port, flags: flagSYN},
				} {
					got, err := vm.Run(p.bytes())
					if err != nil {
						t.Fatal(err)
					}
					if (got > 0) != want {
						t.Fatalf("%d ports, %+v: kept %d bytes, want kept=%v", n, p, got, want)
					}
				}
				pureACK := tcpPacket{v6: v6, dstPort: port, flags: flagACK}
				if got, _ := vm.Run(pureACK.bytes()); got > 0 {
					t.Fatalf("%d ports: kept a pure ACK to %d", n, port)
				}
			}
		}
	}
}
