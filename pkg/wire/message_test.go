package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// frame builds a frame by hand, so that tests can send what AppendMessage never would.
func frame(t Type, payload []byte) []byte {
	b := []byte{byte(t)}
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// uv is a minimal uvarint, for payloads built by hand.
func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func repeatList(n int, s string) []string {
	l := make([]string, n)
	for i := range l {
		l[i] = s
	}
	return l
}

// maxEnviron is an environment whose encoding is exactly MaxFrameSize: a count byte, a 3-byte
// length and the entry.
func maxEnviron() []string {
	return []string{"K=" + strings.Repeat("v", MaxFrameSize-4-2-1)}
}

// roundTrips is every message type, empty and at its bounds. want is set where decoding
// normalises (an empty list decodes as nil).
func roundTrips() []struct {
	name string
	msg  Message
	want Message
} {
	return []struct {
		name string
		msg  Message
		want Message
	}{
		{name: "hello empty", msg: Hello{}},
		{name: "hello empty features", msg: Hello{Features: []string{}}, want: Hello{}},
		{name: "hello", msg: Hello{Version: Version, Features: []string{FeatureEnv, FeatureDialTCP, FeatureDialUDP}, Client: "v1.2.3"}},
		{name: "hello max", msg: Hello{Version: 0xffff, Features: repeatList(maxFeatures, strings.Repeat("f", maxFeatureLen)), Client: strings.Repeat("c", maxVersionLen)}},
		{name: "hello empty feature name", msg: Hello{Features: []string{""}}},
		{name: "hello reply empty", msg: HelloReply{}},
		{name: "hello reply", msg: HelloReply{Version: Version, Features: []string{FeatureEnv}, Sidecar: "v1.2.3", TargetPID: 4242}},
		{name: "hello reply max", msg: HelloReply{Version: 0xffff, Features: repeatList(maxFeatures, strings.Repeat("f", maxFeatureLen)), Sidecar: strings.Repeat("s", maxVersionLen), TargetPID: 1<<31 - 1}},
		{name: "hello reply negative pid", msg: HelloReply{TargetPID: -1}},
		{name: "env request", msg: EnvRequest{}},
		{name: "env reply empty", msg: EnvReply{}},
		{name: "env reply empty list", msg: EnvReply{Environ: []string{}}, want: EnvReply{}},
		{name: "env reply", msg: EnvReply{Environ: []string{"PATH=/usr/bin", "EMPTY=", "NOEQUALS", "BIN=\x00\xff\xfe", "PATH=/dup"}}},
		{name: "env reply max frame", msg: EnvReply{Environ: maxEnviron()}},
		{name: "env reply max entries", msg: EnvReply{Environ: repeatList(maxEnvEntries, "A")}},
		{name: "env reply more", msg: EnvReply{Environ: []string{"A=1"}, More: true}},
		{name: "heartbeat zero", msg: Heartbeat{}},
		{name: "heartbeat max", msg: Heartbeat{Seq: 1<<64 - 1}},
		{name: "error empty", msg: Error{}},
		{name: "error", msg: Error{Code: ErrCodeVersion, Reason: "sidecar speaks 1, client 2"}},
		{name: "error unknown code", msg: Error{Code: 0xffff, Reason: "from the future"}},
		{name: "error max reason", msg: Error{Code: ErrCodeInternal, Reason: strings.Repeat("r", maxReasonLen)}},
		{name: "dial empty", msg: Dial{}},
		{name: "dial v4", msg: Dial{Network: "tcp", Address: "10.0.0.1:80", TimeoutMillis: 30000}},
		{name: "dial v6", msg: Dial{Network: "udp", Address: "[fe80::1%eth0]:53", TimeoutMillis: 1}},
		{name: "dial name", msg: Dial{Network: "tcp", Address: "kubernetes.default.svc.cluster.local:443"}},
		{name: "dial max", msg: Dial{Network: strings.Repeat("n", maxNetworkLen), Address: strings.Repeat("a", maxAddressLen), TimeoutMillis: 1<<32 - 1}},
		{name: "dial reply ok", msg: DialReply{}},
		{name: "dial reply refused", msg: DialReply{Errno: linuxECONNREFUSED, Reason: "dial tcp 10.0.0.1:80: connect: connection refused"}},
		{name: "dial reply max", msg: DialReply{Errno: 1<<32 - 1, Reason: strings.Repeat("r", maxReasonLen)}},
		{name: "file request", msg: FileRequest{Path: "/etc/resolv.conf"}},
		{name: "file request max", msg: FileRequest{Path: strings.Repeat("p", maxPathLen)}},
		{name: "file reply empty", msg: FileReply{}},
		{name: "file reply chunk", msg: FileReply{Data: []byte("nameserver 10.96.0.10\n"), More: true}},
		{name: "file reply max chunk", msg: FileReply{Data: bytes.Repeat([]byte{0xff}, MaxFileChunk), Reason: strings.Repeat("r", maxReasonLen)}},
		{name: "subscribe", msg: Subscribe{Port: 8080, Mode: ModeSteal}},
		{name: "subscribe max", msg: Subscribe{Port: 65535, Mode: strings.Repeat("m", maxModeLen), Header: strings.Repeat("h", MaxFilterLen), Path: strings.Repeat("p", MaxFilterLen)}},
		{name: "subscribe filtered", msg: Subscribe{Port: 80, Mode: ModeSteal, Header: "X-Dev: alice", Path: "^/api/"}},
		{name: "subscribe filter leaf", msg: Subscribe{Port: 80, Mode: ModeSteal, Filter: &HTTPFilter{Op: FilterMethod, Arg: "GET"}}},
		{name: "subscribe filter tree", msg: Subscribe{Port: 80, Mode: ModeSteal, Header: "X-Team: a", Filter: teamFilter()}},
		{name: "subscribe filter deepest", msg: Subscribe{Port: 80, Mode: ModeSteal, Filter: deepFilter(MaxFilterDepth - 1)}},
		{name: "subscribe filter widest", msg: Subscribe{Port: 80, Mode: ModeSteal, Filter: wideFilter(MaxFilterNodes-1, "X-A: b")}},
		{name: "subscribe filter longest", msg: Subscribe{Port: 80, Mode: ModeSteal, Filter: wideFilter(MaxFilterNodes-1, strings.Repeat("q", MaxFilterLen))}},
		{name: "unsubscribe", msg: Unsubscribe{Port: 8080}},
		{name: "redirects", msg: Redirects{}},
		{name: "redirects clean", msg: Redirects{Clean: true}},
		{name: "redirects reply empty", msg: RedirectsReply{}},
		{name: "redirects reply", msg: RedirectsReply{Tables: []RedirectTable{
			{Name: "remocal_41000", Ports: []uint16{80, 8080}, Live: true},
			{Name: "remocal_42000", Ports: []uint16{443}, Removed: true},
			{Name: "remocal_43000"},
		}}},
		{name: "subscriptions", msg: Subscriptions{}},
		{name: "target", msg: Target{ContainerID: "4f1c0ffee"}},
		{name: "target empty", msg: Target{}},
		{name: "target max", msg: Target{ContainerID: strings.Repeat("a", maxContainerIDLen)}},
		{name: "target reply", msg: TargetReply{PID: 7}},
		{name: "subscriptions reply empty", msg: SubscriptionsReply{}},
		{name: "subscriptions reply empty list", msg: SubscriptionsReply{Subscriptions: []SubscriptionInfo{}}, want: SubscriptionsReply{}},
		{name: "subscriptions reply", msg: SubscriptionsReply{Subscriptions: []SubscriptionInfo{
			{Port: 80, Mode: ModeMirror, Client: "10.244.0.1:41234", Capture: true},
			{Port: 8080, Mode: ModeSteal, Header: "X-Dev: alice", Path: "^/api/", Client: "127.0.0.1:5000", Mine: true},
			{Port: 8080, Mode: ModeSteal, Header: "X-Dev: bob", Client: "[fd00::7]:41234"},
			{},
		}}},
		{name: "subscriptions reply max", msg: SubscriptionsReply{Subscriptions: []SubscriptionInfo{{
			Port: 65535, Mode: strings.Repeat("m", maxModeLen), Header: strings.Repeat("h", MaxFilterLen), Path: strings.Repeat("p", MaxFilterLen),
			Client: strings.Repeat("c", maxAddressLen), Mine: true, Capture: true,
		}}}},
		{name: "subscriptions reply max count", msg: SubscriptionsReply{Subscriptions: make([]SubscriptionInfo, maxSubscriptions)}},
		{name: "session label", msg: SessionLabel{Label: "alice@laptop"}},
		{name: "session label empty", msg: SessionLabel{}},
		{name: "session label unicode", msg: SessionLabel{Label: "zoë 開発"}},
		{name: "session label max", msg: SessionLabel{Label: strings.Repeat("l", MaxLabelLen)}},
		{name: "sessions", msg: Sessions{}},
		{name: "sessions reply empty", msg: SessionsReply{}},
		{name: "sessions reply empty list", msg: SessionsReply{Sessions: []SessionInfo{}}, want: SessionsReply{}},
		{name: "sessions reply", msg: SessionsReply{Sessions: []SessionInfo{
			{Sidecar: "remocal-x7k2p", Label: "alice@laptop", Since: time.UnixMilli(1_700_000_000_123), Client: "198.18.0.1:41234", Mine: true, Ports: []SessionPort{
				{Port: 80, Mode: ModeMirror, Capture: true},
				{Port: 8080, Mode: ModeSteal, Header: "X-Dev: alice", Path: "^/api/"},
			}},
			{Sidecar: "remocal-b0b00", Label: "arn:aws:eks:eu-west-1:111122223333:cluster/dev", Since: time.UnixMilli(-1), Client: "client-0123abcd"},
			{Label: "long ago", Since: time.UnixMilli(-1 << 63)},
			{},
		}}},
		{name: "sessions reply empty ports", msg: SessionsReply{Sessions: []SessionInfo{{Ports: []SessionPort{}}}}, want: SessionsReply{Sessions: []SessionInfo{{}}}},
		{name: "sessions reply max", msg: SessionsReply{Sessions: []SessionInfo{{
			Sidecar: strings.Repeat("s", maxSidecarNameLen), Label: strings.Repeat("l", MaxLabelLen), Since: time.UnixMilli(1<<63 - 1),
			Client: strings.Repeat("c", maxAddressLen), Mine: true, Ports: []SessionPort{{
				Port: 65535, Mode: strings.Repeat("m", maxModeLen), Header: strings.Repeat("h", MaxFilterLen), Path: strings.Repeat("p", MaxFilterLen), Capture: true,
			}},
		}}}},
		{name: "sessions reply max count", msg: SessionsReply{Sessions: make([]SessionInfo, maxListedSessions)}},
		{name: "sessions reply max ports", msg: SessionsReply{Sessions: []SessionInfo{{Ports: make([]SessionPort, maxSessionPorts)}}}},
		{name: "subscribe reply ok", msg: SubscribeReply{}},
		{name: "subscribe reply refused", msg: SubscribeReply{Errno: 1, Reason: "operation not permitted"}},
		{name: "incoming", msg: Incoming{Port: 80, Remote: "198.18.64.7:41234"}},
		{name: "incoming v6", msg: Incoming{Port: 443, Remote: "[fd00::7]:41234"}},
		{name: "file reply enoent", msg: FileReply{Errno: 2, Reason: "open /etc/x: no such file or directory"}},
		{name: "fs request empty", msg: FSRequest{}},
		{name: "fs lstat", msg: FSRequest{Op: FSLstat, Path: "/etc/config/..data"}},
		{name: "fs read", msg: FSRequest{Op: FSRead, Path: "/etc/hosts", Size: 1 << 20}},
		{name: "fs write chunk", msg: FSRequest{Op: FSWrite, Path: "/tmp/x", Mode: 0o640, Data: []byte("hello\x00\xff"), More: true}},
		{name: "fs write empty data list", msg: FSRequest{Op: FSWrite, Data: []byte{}}, want: FSRequest{Op: FSWrite}},
		{name: "fs rename", msg: FSRequest{Op: FSRename, Path: "/a", Path2: "/b"}},
		{name: "fs remove dir", msg: FSRequest{Op: FSRemove, Path: "/d", Flags: FSRemoveDir}},
		{name: "fs unknown op", msg: FSRequest{Op: 255, Size: -1}},
		{name: "fs request max", msg: FSRequest{Op: FSWrite, Path: strings.Repeat("p", maxPathLen), Path2: strings.Repeat("q", maxPathLen), Mode: 1<<32 - 1, Flags: 1<<32 - 1, Size: 1<<63 - 1, Data: bytes.Repeat([]byte{0xff}, MaxFSChunk), More: true}},
		{name: "fs reply empty", msg: FSReply{}},
		{name: "fs reply stat", msg: FSReply{Stat: testStat()}},
		{name: "fs reply stat extremes", msg: FSReply{Stat: FileStat{Mode: 1<<32 - 1, Size: -1, Blocks: 1<<63 - 1, Ino: 1<<64 - 1, Nlink: 1<<32 - 1, UID: 1<<32 - 1, GID: 1<<32 - 1, Rdev: 1<<64 - 1, Atime: -1 << 63, Mtime: -1, Ctime: 1<<63 - 1}}},
		{name: "fs reply enoent", msg: FSReply{Errno: linuxENOENT, Reason: "lstat /etc/x: no such file or directory"}},
		{name: "fs reply configmap listing", msg: FSReply{Entries: []DirEntry{
			{Name: "..2024_01_01_00_00_00.000000001", Stat: FileStat{Mode: 0o40755, Nlink: 2}},
			{Name: "..data", Stat: FileStat{Mode: 0o120777, Size: 31}},
			{Name: "app.yaml", Stat: FileStat{Mode: 0o120777, Size: 15}},
			{Name: ".hidden", Stat: testStat()},
			{Name: "...", Stat: testStat()},
			{Name: "\xff\xfe not utf-8", Stat: testStat()},
		}, More: true}},
		{name: "fs reply empty entries", msg: FSReply{Entries: []DirEntry{}}, want: FSReply{}},
		{name: "fs reply max name", msg: FSReply{Entries: []DirEntry{{Name: strings.Repeat("n", maxNameLen)}}}},
		{name: "fs reply full listing", msg: fullListing()},
		{name: "fs reply link target", msg: FSReply{Target: "..data/app.yaml"}},
		{name: "fs reply read chunk", msg: FSReply{Stat: testStat(), Data: []byte("nameserver 10.96.0.10\n"), More: true}},
		{name: "lane open new", msg: LaneOpen{Ticket: testTicket(1), Kind: LaneOutgoing}},
		{name: "lane open incoming", msg: LaneOpen{Ticket: testTicket(2), Kind: LaneIncoming}},
		{name: "lane open re-attach", msg: LaneOpen{Ticket: testTicket(3), Lane: 7, Kind: LaneIncoming, Received: 1 << 40}},
		{name: "lane open max", msg: LaneOpen{Ticket: testTicket(0xff), Lane: 1<<64 - 1, Kind: LaneIncoming, Received: 1<<64 - 1}},
		{name: "lane reply", msg: LaneReply{Lane: 7, Received: 123456}},
		{name: "lane reply max", msg: LaneReply{Lane: 1<<64 - 1, Received: 1<<64 - 1}},
		{name: "lane control", msg: LaneControl{}},
		{name: "lane tickets", msg: LaneTickets{Count: 16}},
		{name: "lane tickets none", msg: LaneTickets{}},
		{name: "lane tickets max", msg: LaneTickets{Count: MaxLaneTickets}},
		{name: "lane tickets reply", msg: LaneTicketsReply{Tickets: []LaneTicket{testTicket(1), testTicket(2)}, TTLMillis: 10000}},
		{name: "lane tickets reply empty", msg: LaneTicketsReply{}},
		{name: "lane tickets reply empty list", msg: LaneTicketsReply{Tickets: []LaneTicket{}, TTLMillis: 1}, want: LaneTicketsReply{TTLMillis: 1}},
		{name: "lane tickets reply max", msg: LaneTicketsReply{Tickets: make([]LaneTicket, MaxLaneTickets), TTLMillis: 1<<32 - 1}},
		{name: "lane acks", msg: LaneAcks{Acks: []LaneAck{{Lane: 1, Received: 4096}, {Lane: 9, Received: 0}}}},
		{name: "lane acks empty", msg: LaneAcks{}},
		{name: "lane acks empty list", msg: LaneAcks{Acks: []LaneAck{}}, want: LaneAcks{}},
		{name: "lane acks max", msg: LaneAcks{Acks: repeatAcks(MaxLaneAcks, LaneAck{Lane: 1<<64 - 1, Received: 1<<64 - 1})}},
		{name: "lane end", msg: LaneEnd{Lane: 3, Sent: 1 << 20}},
		{name: "lane end reset", msg: LaneEnd{Lane: 1<<64 - 1, Sent: 1<<64 - 1, Reset: true}},
		{name: "lane broken", msg: LaneBroken{Lane: 3}},
		{name: "lane broken max", msg: LaneBroken{Lane: 1<<64 - 1}},
		{name: "lane free", msg: LaneFree{Lane: 3}},
		{name: "lane free max", msg: LaneFree{Lane: 1<<64 - 1}},
		{name: "peer join", msg: PeerJoin{Subscribe: Subscribe{Port: 8080, Mode: ModeSteal, Header: "X-Dev: alice"}, Sidecar: "remocal-x7k2p", Label: "alice@example", SinceUnixNano: 1_700_000_000_123_456_789, Token: PeerToken{1, 2, 3}}},
		{name: "peer join empty", msg: PeerJoin{}},
		{name: "peer join filter tree", msg: PeerJoin{Subscribe: Subscribe{Port: 8080, Mode: ModeSteal, Filter: &HTTPFilter{Op: FilterAllOf, Sub: []HTTPFilter{{Op: FilterMethod, Arg: "GET"}, {Op: FilterPath, Arg: "^/api/"}}}}, Sidecar: "remocal-b", Label: "bob", SinceUnixNano: 7, Token: PeerToken{4}}},
		{name: "peer deliver", msg: PeerDeliver{Token: PeerToken{9}, Incoming: Incoming{Port: 8080, Remote: "198.18.0.7:41234"}}},
		{name: "peer hand-over", msg: PeerHandOver{Token: PeerToken{5}, Incoming: Incoming{Port: 8080, Remote: "198.18.0.7:41234"}, Route: PeerToken{6}, Buffered: 312}},
		{name: "peer hand-over before", msg: PeerHandOver{Token: PeerToken{5}, Incoming: Incoming{Port: 8080, Remote: "[2001:2::7]:41234"}, Route: PeerToken{7}, Buffered: MaxHandOverBuffered, Before: []Subscribe{
			{Port: 8080, Mode: ModeSteal, Header: "X-Dev: alice"},
			{Port: 8080, Mode: ModeSteal, Filter: &HTTPFilter{Op: FilterAnyOf, Sub: []HTTPFilter{{Op: FilterMethod, Arg: "POST"}, {Op: FilterQuery, Arg: "dev=^carol$"}}}},
		}}},
		{name: "peer route", msg: PeerRoute{Route: PeerToken{6}}},
		{name: "fs reply max", msg: FSReply{Errno: 1<<32 - 1, Reason: strings.Repeat("r", maxReasonLen), Stat: testStat(), Target: strings.Repeat("t", maxPathLen), Data: bytes.Repeat([]byte{0xff}, MaxFSChunk), More: true}},
	}
}

// testTicket is a ticket of which every byte is b.
func testTicket(b byte) LaneTicket {
	var t LaneTicket
	for i := range t {
		t[i] = b
	}
	return t
}

func repeatAcks(n int, ack LaneAck) []LaneAck {
	l := make([]LaneAck, n)
	for i := range l {
		l[i] = ack
	}
	return l
}

// testStat is a regular file's stat as the kernel reports it.
func testStat() FileStat {
	return FileStat{Mode: 0o100644, Size: 1234, Blocks: 8, Ino: 4242, Nlink: 1, UID: 1000, GID: 1000, Atime: 1700000000123456789, Mtime: 1700000000000000001, Ctime: 1700000001000000000}
}

// fullListing is a reply as full of entries as SplitDirEntries makes one.
func fullListing() FSReply {
	var entries []DirEntry
	for i := range 2 * maxDirEntriesPerReply {
		entries = append(entries, DirEntry{Name: fmt.Sprintf("f%d", i), Stat: testStat()})
	}
	replies, err := SplitDirEntries(entries)
	if err != nil {
		panic(err)
	}
	return replies[0]
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range roundTrips() {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.msg
			}
			prefix := []byte("prefix")
			b, err := AppendMessage(bytes.Clone(prefix), tt.msg)
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendMessage clobbered the buffer it appends to")
			}
			enc := b[len(prefix):]
			if got := Type(enc[0]); got != tt.msg.Type() {
				t.Errorf("frame type = %s, want %s", got, tt.msg.Type())
			}
			if size := binary.BigEndian.Uint32(enc[1:]); int(size) != len(enc)-headerLen {
				t.Errorf("frame announces %d bytes, carries %d", size, len(enc)-headerLen)
			}
			got, n, err := ParseMessage(append(bytes.Clone(enc), "next frame"...))
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if n != len(enc) {
				t.Errorf("ParseMessage consumed %d bytes, want %d", n, len(enc))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseMessage = %#v, want %#v", got, want)
			}
			var buf bytes.Buffer
			if err := WriteMessage(&buf, tt.msg); err != nil {
				t.Fatalf("WriteMessage: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), enc) {
				t.Errorf("WriteMessage wrote other bytes than AppendMessage")
			}
		})
	}
}

func TestRoundTripDoesNotAlias(t *testing.T) {
	b, err := AppendMessage(nil, EnvReply{Environ: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if got := m.(EnvReply).Environ[0]; got != "A=1" {
		t.Errorf("decoded message changed with the input buffer: %q", got)
	}
}

func TestParseMessageTruncated(t *testing.T) {
	for _, tt := range roundTrips() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendMessage(nil, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range len(b) {
				m, n, err := ParseMessage(b[:i])
				if err != ErrTruncated || m != nil || n != 0 {
					t.Fatalf("ParseMessage(first %d of %d bytes) = %v, %d, %v; want nil, 0, ErrTruncated", i, len(b), m, n, err)
				}
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	hello := cat([]byte{0, 1}, uv(1), uv(3), []byte("env"), uv(2), []byte("v1"))
	tests := []struct {
		name  string
		input []byte
		want  error
		// consumed is the frame length for errors about a whole frame, else 0.
		consumed int
	}{
		{name: "announces one byte too many", input: cat([]byte{byte(TypeEnvReply)}, binary.BigEndian.AppendUint32(nil, MaxFrameSize+1)), want: ErrTooLarge},
		{name: "announces 4 GiB", input: []byte{byte(TypeHello), 0xff, 0xff, 0xff, 0xff}, want: ErrTooLarge},
		{name: "too large even with unknown type", input: []byte{0, 0x40, 0, 0, 0}, want: ErrTooLarge},
		{name: "type zero", input: frame(0, nil), want: ErrUnknownType, consumed: headerLen},
		{name: "type past the last", input: frame(TypeLaneFree+1, []byte{1, 2}), want: ErrUnknownType, consumed: headerLen + 2},
		{name: "type 255", input: frame(255, nil), want: ErrUnknownType, consumed: headerLen},
		{name: "hello well formed", input: frame(TypeHello, hello), want: nil, consumed: headerLen + len(hello)},
		{name: "hello trailing byte", input: frame(TypeHello, cat(hello, []byte{0})), want: ErrMalformed, consumed: headerLen + len(hello) + 1},
		{name: "env request with payload", input: frame(TypeEnvRequest, []byte{0}), want: ErrMalformed, consumed: headerLen + 1},
		{name: "heartbeat short", input: frame(TypeHeartbeat, make([]byte, 7)), want: ErrMalformed, consumed: headerLen + 7},
		{name: "heartbeat long", input: frame(TypeHeartbeat, make([]byte, 9)), want: ErrMalformed, consumed: headerLen + 9},
		{name: "empty hello", input: frame(TypeHello, nil), want: ErrMalformed, consumed: headerLen},
		{name: "string runs past payload", input: frame(TypeDial, cat(uv(3), []byte("tc"))), want: ErrMalformed, consumed: headerLen + 3},
		{name: "varint runs past payload", input: frame(TypeEnvReply, []byte{0x80}), want: ErrMalformed, consumed: headerLen + 1},
		{name: "varint not minimal", input: frame(TypeEnvReply, []byte{0x80, 0x00}), want: ErrMalformed, consumed: headerLen + 2},
		{name: "varint overflows", input: frame(TypeEnvReply, bytes.Repeat([]byte{0xff}, 11)), want: ErrMalformed, consumed: headerLen + 11},
		{name: "list count beyond bytes left", input: frame(TypeEnvReply, cat(uv(3), uv(0), uv(0))), want: ErrMalformed, consumed: headerLen + 3},
		{name: "dial reply without reason", input: frame(TypeDialReply, []byte{0, 0, 0, 111}), want: ErrMalformed, consumed: headerLen + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, n, err := ParseMessage(tt.input)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ParseMessage error = %v, want %v", err, tt.want)
			}
			if n != tt.consumed {
				t.Errorf("ParseMessage consumed %d bytes, want %d", n, tt.consumed)
			}
			if err != nil && m != nil {
				t.Errorf("ParseMessage returned a message with an error: %#v", m)
			}
		})
	}
}

// TestDecodeBounds sends fields just past their bounds, which AppendMessage refuses to build.
func TestDecodeBounds(t *testing.T) {
	tests := []struct {
		name    string
		typ     Type
		payload []byte
		want    error
	}{
		{name: "too many features", typ: TypeHello, payload: cat([]byte{0, 1}, uv(maxFeatures+1), bytes.Repeat(uv(0), maxFeatures+1), uv(0)), want: ErrTooLarge},
		{name: "feature count of 2^40", typ: TypeHello, payload: cat([]byte{0, 1}, uv(1<<40)), want: ErrTooLarge},
		{name: "feature too long", typ: TypeHello, payload: cat([]byte{0, 1}, uv(1), uv(maxFeatureLen+1), bytes.Repeat([]byte("f"), maxFeatureLen+1), uv(0)), want: ErrTooLarge},
		{name: "client version too long", typ: TypeHello, payload: cat([]byte{0, 1}, uv(0), uv(maxVersionLen+1), bytes.Repeat([]byte("v"), maxVersionLen+1)), want: ErrTooLarge},
		{name: "sidecar version too long", typ: TypeHelloReply, payload: cat([]byte{0, 1}, uv(0), uv(maxVersionLen+1), bytes.Repeat([]byte("v"), maxVersionLen+1), make([]byte, 4)), want: ErrTooLarge},
		{name: "string length of 2^60", typ: TypeDial, payload: cat(uv(1<<60), []byte("tcp")), want: ErrTooLarge},
		{name: "network too long", typ: TypeDial, payload: cat(uv(maxNetworkLen+1), bytes.Repeat([]byte("n"), maxNetworkLen+1), uv(0), make([]byte, 4)), want: ErrTooLarge},
		{name: "address too long", typ: TypeDial, payload: cat(uv(3), []byte("tcp"), uv(maxAddressLen+1), bytes.Repeat([]byte("a"), maxAddressLen+1), make([]byte, 4)), want: ErrTooLarge},
		{name: "reason too long", typ: TypeError, payload: cat([]byte{0, 1}, uv(maxReasonLen+1), bytes.Repeat([]byte("r"), maxReasonLen+1)), want: ErrTooLarge},
		{name: "dial reason too long", typ: TypeDialReply, payload: cat(make([]byte, 4), uv(maxReasonLen+1), bytes.Repeat([]byte("r"), maxReasonLen+1)), want: ErrTooLarge},
		{name: "too many env entries", typ: TypeEnvReply, payload: cat(uv(maxEnvEntries+1), bytes.Repeat(uv(0), maxEnvEntries+1)), want: ErrTooLarge},
		{name: "env entry longer than a frame", typ: TypeEnvReply, payload: cat(uv(1), uv(MaxFrameSize+1)), want: ErrTooLarge},
		{name: "max env entries", typ: TypeEnvReply, payload: cat(uv(maxEnvEntries), bytes.Repeat(uv(0), maxEnvEntries), []byte{0}), want: nil},
		{name: "env more flag of 2", typ: TypeEnvReply, payload: cat(uv(0), []byte{2}), want: ErrMalformed},
		{name: "file path too long", typ: TypeFileRequest, payload: cat(uv(maxPathLen+1), bytes.Repeat([]byte("p"), maxPathLen+1)), want: ErrTooLarge},
		{name: "file reason too long", typ: TypeFileReply, payload: cat(make([]byte, 4), uv(maxReasonLen+1), bytes.Repeat([]byte("r"), maxReasonLen+1), uv(0), []byte{0}), want: ErrTooLarge},
		{name: "file chunk too long", typ: TypeFileReply, payload: cat(make([]byte, 4), uv(0), uv(MaxFileChunk+1), make([]byte, MaxFileChunk+1), []byte{0}), want: ErrTooLarge},
		{name: "file more flag of 2", typ: TypeFileReply, payload: cat(make([]byte, 4), uv(0), uv(0), []byte{2}), want: ErrMalformed},
		{name: "file reply without more", typ: TypeFileReply, payload: cat(make([]byte, 4), uv(0), uv(0)), want: ErrMalformed},
		{name: "redirects clean of 2", typ: TypeRedirects, payload: []byte{2}, want: ErrMalformed},
		{name: "redirect tables over the bound", typ: TypeRedirectsReply, payload: uv(maxRedirectTables + 1), want: ErrTooLarge},
		{name: "redirect tables past the end", typ: TypeRedirectsReply, payload: uv(3), want: ErrMalformed},
		{name: "redirected ports past the end", typ: TypeRedirectsReply, payload: cat(uv(1), uv(1), []byte("r"), uv(2), []byte{0, 80}), want: ErrMalformed},
		{name: "redirect table without flags", typ: TypeRedirectsReply, payload: cat(uv(1), uv(1), []byte("r"), uv(0)), want: ErrMalformed},
		{name: "subscriptions with a payload", typ: TypeSubscriptions, payload: []byte{0}, want: ErrMalformed},
		{name: "target id over the bound", typ: TypeTarget, payload: uv(maxContainerIDLen + 1), want: ErrTooLarge},
		{name: "target id past the end", typ: TypeTarget, payload: uv(3), want: ErrMalformed},
		{name: "target reply short", typ: TypeTargetReply, payload: []byte{0, 0, 1}, want: ErrMalformed},
		{name: "subscriptions over the bound", typ: TypeSubscriptionsReply, payload: uv(maxSubscriptions + 1), want: ErrTooLarge},
		{name: "subscriptions past the end", typ: TypeSubscriptionsReply, payload: cat(uv(2), []byte{0, 80}, uv(0), uv(0), uv(0), uv(0), []byte{0, 0}), want: ErrMalformed},
		{name: "subscription without flags", typ: TypeSubscriptionsReply, payload: cat(uv(1), []byte{0, 80}, uv(0), uv(0), uv(0), uv(0)), want: ErrMalformed},
		{name: "subscription mine of 2", typ: TypeSubscriptionsReply, payload: cat(uv(1), []byte{0, 80}, uv(0), uv(0), uv(0), uv(0), []byte{2, 0}), want: ErrMalformed},
		{name: "subscription mode too long", typ: TypeSubscriptionsReply, payload: cat(uv(1), []byte{0, 80}, uv(maxModeLen+1), bytes.Repeat([]byte("m"), maxModeLen+1), uv(0), uv(0), uv(0), []byte{0, 0}), want: ErrTooLarge},
		{name: "subscription client too long", typ: TypeSubscriptionsReply, payload: cat(uv(1), []byte{0, 80}, uv(0), uv(0), uv(0), uv(maxAddressLen+1), bytes.Repeat([]byte("c"), maxAddressLen+1), []byte{0, 0}), want: ErrTooLarge},
		{name: "subscription well formed", typ: TypeSubscriptionsReply, payload: cat(uv(1), []byte{0, 80}, uv(0), uv(0), uv(0), uv(0), []byte{1, 1}), want: nil},
		{name: "subscribe without filters", typ: TypeSubscribe, payload: cat([]byte{0, 80}, uv(5), []byte("steal")), want: ErrMalformed},
		{name: "fs op missing", typ: TypeFSRequest, payload: nil, want: ErrMalformed},
		{name: "fs path too long", typ: TypeFSRequest, payload: cat([]byte{byte(FSLstat)}, uv(maxPathLen+1), bytes.Repeat([]byte("p"), maxPathLen+1), uv(0), make([]byte, 16), uv(0), []byte{0}), want: ErrTooLarge},
		{name: "fs path2 too long", typ: TypeFSRequest, payload: cat([]byte{byte(FSRename)}, uv(1), []byte("/"), uv(maxPathLen+1), bytes.Repeat([]byte("p"), maxPathLen+1), make([]byte, 16), uv(0), []byte{0}), want: ErrTooLarge},
		{name: "fs request data too long", typ: TypeFSRequest, payload: cat([]byte{byte(FSWrite)}, uv(0), uv(0), make([]byte, 16), uv(MaxFSChunk+1), make([]byte, MaxFSChunk+1), []byte{0}), want: ErrTooLarge},
		{name: "fs request without more", typ: TypeFSRequest, payload: cat([]byte{byte(FSWrite)}, uv(0), uv(0), make([]byte, 16), uv(0)), want: ErrMalformed},
		{name: "fs request size cut short", typ: TypeFSRequest, payload: cat([]byte{byte(FSRead)}, uv(0), uv(0), make([]byte, 12)), want: ErrMalformed},
		{name: "fs request more of 2", typ: TypeFSRequest, payload: cat([]byte{byte(FSWrite)}, uv(0), uv(0), make([]byte, 16), uv(0), []byte{2}), want: ErrMalformed},
		{name: "fs request well formed", typ: TypeFSRequest, payload: cat([]byte{byte(FSWrite)}, uv(0), uv(0), make([]byte, 16), uv(0), []byte{1}), want: nil},
		{name: "fs reason too long", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(maxReasonLen+1), bytes.Repeat([]byte("r"), maxReasonLen+1)), want: ErrTooLarge},
		{name: "fs stat cut short", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen-1)), want: ErrMalformed},
		{name: "fs entries over the bound", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(maxDirEntriesPerReply+1)), want: ErrTooLarge},
		{name: "fs entries past the end", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(2), fsEntry("a"), uv(0), uv(0), []byte{0}), want: ErrMalformed},
		{name: "fs entry name too long", typ: TypeFSReply, payload: fsListing(strings.Repeat("n", maxNameLen+1)), want: ErrTooLarge},
		{name: "fs entry name empty", typ: TypeFSReply, payload: fsListing(""), want: ErrMalformed},
		{name: "fs entry name dot", typ: TypeFSReply, payload: fsListing("."), want: ErrMalformed},
		{name: "fs entry name dot dot", typ: TypeFSReply, payload: fsListing(".."), want: ErrMalformed},
		{name: "fs entry name with a slash", typ: TypeFSReply, payload: fsListing("../etc"), want: ErrMalformed},
		{name: "fs entry name with a NUL", typ: TypeFSReply, payload: fsListing("a\x00b"), want: ErrMalformed},
		{name: "fs entry name dotted", typ: TypeFSReply, payload: fsListing("..data"), want: nil},
		{name: "fs entry stat cut short", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(1), uv(1), []byte("a"), make([]byte, fileStatLen-1), uv(0), uv(0), []byte{0}), want: ErrMalformed},
		{name: "fs link target too long", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(0), uv(maxPathLen+1), bytes.Repeat([]byte("t"), maxPathLen+1), uv(0), []byte{0}), want: ErrTooLarge},
		{name: "fs reply data too long", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(0), uv(0), uv(MaxFSChunk+1), make([]byte, MaxFSChunk+1), []byte{0}), want: ErrTooLarge},
		{name: "fs reply more of 2", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(0), uv(0), uv(0), []byte{2}), want: ErrMalformed},
		{name: "fs reply without more", typ: TypeFSReply, payload: cat(make([]byte, 4), uv(0), make([]byte, fileStatLen), uv(0), uv(0), uv(0)), want: ErrMalformed},
		{name: "lane open kind 2", typ: TypeLaneOpen, payload: cat(make([]byte, 16+8), []byte{2}, make([]byte, 8)), want: ErrMalformed},
		{name: "lane open kind 255", typ: TypeLaneOpen, payload: cat(make([]byte, 16+8), []byte{255}, make([]byte, 8)), want: ErrMalformed},
		{name: "lane open well formed", typ: TypeLaneOpen, payload: cat(make([]byte, 16+8), []byte{byte(LaneIncoming)}, make([]byte, 8)), want: nil},
		{name: "lane open ticket cut short", typ: TypeLaneOpen, payload: make([]byte, 15), want: ErrMalformed},
		{name: "lane open without received", typ: TypeLaneOpen, payload: make([]byte, 16+8+1), want: ErrMalformed},
		{name: "lane reply short", typ: TypeLaneReply, payload: make([]byte, 15), want: ErrMalformed},
		{name: "lane control with a payload", typ: TypeLaneControl, payload: []byte{0}, want: ErrMalformed},
		{name: "lane tickets over the bound", typ: TypeLaneTickets, payload: binary.BigEndian.AppendUint16(nil, MaxLaneTickets+1), want: ErrTooLarge},
		{name: "lane tickets of 65535", typ: TypeLaneTickets, payload: []byte{0xff, 0xff}, want: ErrTooLarge},
		{name: "lane tickets short", typ: TypeLaneTickets, payload: []byte{1}, want: ErrMalformed},
		{name: "lane tickets reply over the bound", typ: TypeLaneTicketsReply, payload: cat(uv(MaxLaneTickets+1), make([]byte, 16*(MaxLaneTickets+1)), make([]byte, 4)), want: ErrTooLarge},
		{name: "lane tickets reply count of 2^40", typ: TypeLaneTicketsReply, payload: uv(1 << 40), want: ErrTooLarge},
		{name: "lane tickets reply past the end", typ: TypeLaneTicketsReply, payload: cat(uv(2), make([]byte, 16), make([]byte, 4)), want: ErrMalformed},
		{name: "lane tickets reply without ttl", typ: TypeLaneTicketsReply, payload: cat(uv(1), make([]byte, 16)), want: ErrMalformed},
		{name: "lane acks over the bound", typ: TypeLaneAcks, payload: cat(uv(MaxLaneAcks+1), make([]byte, 16*(MaxLaneAcks+1))), want: ErrTooLarge},
		{name: "lane acks count of 2^40", typ: TypeLaneAcks, payload: uv(1 << 40), want: ErrTooLarge},
		{name: "lane acks past the end", typ: TypeLaneAcks, payload: cat(uv(2), make([]byte, 16+15)), want: ErrMalformed},
		{name: "lane end without reset", typ: TypeLaneEnd, payload: make([]byte, 16), want: ErrMalformed},
		{name: "lane end reset of 2", typ: TypeLaneEnd, payload: cat(make([]byte, 16), []byte{2}), want: ErrMalformed},
		{name: "lane broken short", typ: TypeLaneBroken, payload: make([]byte, 7), want: ErrMalformed},
		{name: "lane free short", typ: TypeLaneFree, payload: make([]byte, 7), want: ErrMalformed},
		{name: "lane free long", typ: TypeLaneFree, payload: make([]byte, 9), want: ErrMalformed},
		{name: "subscribe header too long", typ: TypeSubscribe, payload: cat([]byte{0, 80}, uv(5), []byte("steal"), uv(MaxFilterLen+1), bytes.Repeat([]byte("h"), MaxFilterLen+1), uv(0)), want: ErrTooLarge},
		{name: "peer deliver short token", typ: TypePeerDeliver, payload: make([]byte, 15), want: ErrMalformed},
		{name: "peer hand-over buffered over the bound", typ: TypePeerHandOver, payload: cat(make([]byte, 16), []byte{0x1f, 0x90}, uv(0), make([]byte, 16), []byte{0, 2, 0, 1}, uv(0)), want: ErrTooLarge},
		{name: "peer hand-over too many before", typ: TypePeerHandOver, payload: cat(make([]byte, 16), []byte{0x1f, 0x90}, uv(0), make([]byte, 16), make([]byte, 4), uv(maxHandOverBefore+1)), want: ErrTooLarge},
		{name: "peer hand-over before past the end", typ: TypePeerHandOver, payload: cat(make([]byte, 16), []byte{0x1f, 0x90}, uv(0), make([]byte, 16), make([]byte, 4), uv(2), uv(0)), want: ErrMalformed},
		{name: "peer hand-over before with bytes after its subscription", typ: TypePeerHandOver, payload: cat(make([]byte, 16), []byte{0x1f, 0x90}, uv(0), make([]byte, 16), make([]byte, 4), uv(1), uv(6), []byte{0x1f, 0x90}, uv(0), uv(0), uv(0), []byte{0xff}), want: ErrMalformed},
		{name: "peer route short", typ: TypePeerRoute, payload: make([]byte, 15), want: ErrMalformed},
		{name: "peer join long label", typ: TypePeerJoin, payload: peerJoinWithLabel(strings.Repeat("x", MaxLabelLen+1)), want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseMessage(frame(tt.typ, tt.payload))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("ParseMessage error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendMessageBounds(t *testing.T) {
	over := func(n int) string { return strings.Repeat("x", n+1) }
	tests := []struct {
		name string
		msg  Message
		want error
	}{
		{name: "nil", msg: nil, want: ErrUnknownType},
		{name: "too many features", msg: Hello{Features: repeatList(maxFeatures+1, "f")}, want: ErrTooLarge},
		{name: "feature too long", msg: Hello{Features: []string{over(maxFeatureLen)}}, want: ErrTooLarge},
		{name: "client too long", msg: Hello{Client: over(maxVersionLen)}, want: ErrTooLarge},
		{name: "reply feature too long", msg: HelloReply{Features: []string{over(maxFeatureLen)}}, want: ErrTooLarge},
		{name: "sidecar too long", msg: HelloReply{Sidecar: over(maxVersionLen)}, want: ErrTooLarge},
		{name: "network too long", msg: Dial{Network: over(maxNetworkLen)}, want: ErrTooLarge},
		{name: "address too long", msg: Dial{Address: over(maxAddressLen)}, want: ErrTooLarge},
		{name: "too many env entries", msg: EnvReply{Environ: repeatList(maxEnvEntries+1, "")}, want: ErrTooLarge},
		{name: "environ one byte over a frame", msg: EnvReply{Environ: []string{maxEnviron()[0] + "v"}}, want: ErrTooLarge},
		{name: "environ over a frame in many entries", msg: EnvReply{Environ: repeatList(100, strings.Repeat("e", 1000))}, want: ErrTooLarge},
		{name: "file path too long", msg: FileRequest{Path: over(maxPathLen)}, want: ErrTooLarge},
		{name: "file chunk too long", msg: FileReply{Data: make([]byte, MaxFileChunk+1)}, want: ErrTooLarge},
		{name: "fs path too long", msg: FSRequest{Path: over(maxPathLen)}, want: ErrTooLarge},
		{name: "fs path2 too long", msg: FSRequest{Path2: over(maxPathLen)}, want: ErrTooLarge},
		{name: "fs request data too long", msg: FSRequest{Data: make([]byte, MaxFSChunk+1)}, want: ErrTooLarge},
		{name: "fs link target too long", msg: FSReply{Target: over(maxPathLen)}, want: ErrTooLarge},
		{name: "fs reply data too long", msg: FSReply{Data: make([]byte, MaxFSChunk+1)}, want: ErrTooLarge},
		{name: "fs entry name too long", msg: FSReply{Entries: []DirEntry{{Name: over(maxNameLen)}}}, want: ErrTooLarge},
		{name: "fs entry name empty", msg: FSReply{Entries: []DirEntry{{}}}, want: ErrMalformed},
		{name: "fs entry name dot dot", msg: FSReply{Entries: []DirEntry{{Name: ".."}}}, want: ErrMalformed},
		{name: "fs entry name with a slash", msg: FSReply{Entries: []DirEntry{{Name: "a/b"}}}, want: ErrMalformed},
		{name: "fs entry name with a NUL", msg: FSReply{Entries: []DirEntry{{Name: "a\x00"}}}, want: ErrMalformed},
		{name: "fs entries over the count", msg: FSReply{Entries: make([]DirEntry, maxDirEntriesPerReply+1)}, want: ErrTooLarge},
		{name: "too many subscriptions", msg: SubscriptionsReply{Subscriptions: make([]SubscriptionInfo, maxSubscriptions+1)}, want: ErrTooLarge},
		{name: "subscription filter too long", msg: SubscriptionsReply{Subscriptions: []SubscriptionInfo{{Header: over(MaxFilterLen)}}}, want: ErrTooLarge},
		{name: "subscription client too long", msg: SubscriptionsReply{Subscriptions: []SubscriptionInfo{{Client: over(maxAddressLen)}}}, want: ErrTooLarge},
		{name: "subscriptions over a frame", msg: SubscriptionsReply{Subscriptions: repeatSubscriptions(maxSubscriptions, strings.Repeat("h", MaxFilterLen))}, want: ErrTooLarge},
		{name: "fs entries over a frame", msg: FSReply{Entries: repeatEntries(maxDirEntriesPerReply, strings.Repeat("n", 100))}, want: ErrTooLarge},
		{name: "lane open unknown kind", msg: LaneOpen{Kind: LaneIncoming + 1}, want: ErrMalformed},
		{name: "lane tickets over the bound", msg: LaneTickets{Count: MaxLaneTickets + 1}, want: ErrTooLarge},
		{name: "lane tickets reply over the bound", msg: LaneTicketsReply{Tickets: make([]LaneTicket, MaxLaneTickets+1)}, want: ErrTooLarge},
		{name: "lane acks over the bound", msg: LaneAcks{Acks: make([]LaneAck, MaxLaneAcks+1)}, want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			b, err := AppendMessage(prefix, tt.msg)
			if !errors.Is(err, tt.want) {
				t.Errorf("AppendMessage error = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(b, prefix) {
				t.Errorf("AppendMessage left %q, want the buffer as it was", b)
			}
			var w bytes.Buffer
			if err := WriteMessage(&w, tt.msg); !errors.Is(err, tt.want) || w.Len() != 0 {
				t.Errorf("WriteMessage = %v and wrote %d bytes, want %v and nothing written", err, w.Len(), tt.want)
			}
		})
	}
}

// TestReasonClamped: over-long reasons are cut, not refused, so that an error report is sent.
func TestReasonClamped(t *testing.T) {
	long := strings.Repeat("é", maxReasonLen) // two bytes a rune, so a cut can fall inside one
	for _, msg := range []Message{Error{Code: ErrCodeInternal, Reason: long}, DialReply{Errno: 5, Reason: long}, FileReply{Errno: 2, Reason: long}, FSReply{Errno: 2, Reason: long}} {
		t.Run(msg.Type().String(), func(t *testing.T) {
			b, err := AppendMessage(nil, msg)
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			m, _, err := ParseMessage(b)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			var reason string
			switch m := m.(type) {
			case Error:
				reason = m.Reason
			case DialReply:
				reason = m.Reason
			case FileReply:
				reason = m.Reason
			case FSReply:
				reason = m.Reason
			}
			if len(reason) > maxReasonLen || !strings.HasSuffix(reason, "...") || !strings.HasPrefix(long, strings.TrimSuffix(reason, "...")) {
				t.Errorf("reason of %d bytes, want a prefix of the original within %d bytes ending in ...", len(reason), maxReasonLen)
			}
			if !utf8Valid(reason) {
				t.Errorf("reason cut inside a rune")
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\ufffd") == s }

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{TypeHello.String(), "hello"},
		{TypeDialReply.String(), "dial-reply"},
		{Type(0).String(), "type(0)"},
		{TypeFSRequest.String(), "fs-request"},
		{TypeFSReply.String(), "fs-reply"},
		{TypeSubscriptions.String(), "subscriptions"},
		{TypeSubscriptionsReply.String(), "subscriptions-reply"},
		{TypeLaneOpen.String(), "lane-open"},
		{TypeLaneTicketsReply.String(), "lane-tickets-reply"},
		{TypeLaneBroken.String(), "lane-broken"},
		{TypePeerJoin.String(), "peer-join"},
		{TypePeerDeliver.String(), "peer-deliver"},
		{TypeSessionLabel.String(), "session-label"},
		{TypeSessionsReply.String(), "sessions-reply"},
		{TypePeerHandOver.String(), "peer-hand-over"},
		{TypePeerRoute.String(), "peer-route"},
		{TypeLaneFree.String(), "lane-free"},
		{LaneOutgoing.String(), "outgoing"},
		{LaneIncoming.String(), "incoming"},
		{LaneKind(2).String(), "kind(2)"},
		{FSReadDir.String(), "readdir"},
		{FSSymlink.String(), "symlink"},
		{FSOp(0).String(), "op(0)"},
		{ErrCodeTooLarge.String(), "too large"},
		{ErrorCode(99).String(), "code 99"},
		{Error{Code: ErrCodeVersion, Reason: "speaks 2"}.Error(), "remote version error: speaks 2"},
		{Error{Code: ErrCodeInternal}.Error(), "remote internal error"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	var err error = wrap(Error{Code: ErrCodeVersion, Reason: "speaks 2"})
	tests := []struct {
		name   string
		target error
		want   bool
	}{
		{name: "same code any reason", target: Error{Code: ErrCodeVersion}, want: true},
		{name: "same code same reason", target: Error{Code: ErrCodeVersion, Reason: "speaks 2"}, want: true},
		{name: "same code other reason", target: Error{Code: ErrCodeVersion, Reason: "other"}, want: false},
		{name: "other code", target: Error{Code: ErrCodeProtocol}, want: false},
		{name: "sentinel", target: ErrMalformed, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", err, tt.target, got, tt.want)
			}
		})
	}
	var e Error
	if !errors.As(err, &e) || e.Code != ErrCodeVersion {
		t.Errorf("errors.As did not find the Error in %v", err)
	}
}

func TestErrorOf(t *testing.T) {
	_, _, malformed := ParseMessage(frame(TypeHeartbeat, nil))
	_, _, tooLarge := ParseMessage([]byte{1, 0xff, 0xff, 0xff, 0xff})
	_, _, unknown := ParseMessage(frame(0, nil))
	tests := []struct {
		name string
		err  error
		want ErrorCode
	}{
		{name: "malformed", err: malformed, want: ErrCodeProtocol},
		{name: "unknown type", err: unknown, want: ErrCodeProtocol},
		{name: "truncated", err: ErrTruncated, want: ErrCodeProtocol},
		{name: "too large", err: tooLarge, want: ErrCodeTooLarge},
		{name: "received error passes through", err: wrap(Error{Code: ErrCodeVersion, Reason: "r"}), want: ErrCodeVersion},
		{name: "other", err: errors.New("disk on fire"), want: ErrCodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorOf(tt.err)
			if got.Code != tt.want {
				t.Errorf("ErrorOf(%v).Code = %s, want %s", tt.err, got.Code, tt.want)
			}
			if got.Reason == "" {
				t.Errorf("ErrorOf(%v) has no reason", tt.err)
			}
			if _, err := AppendMessage(nil, got); err != nil {
				t.Errorf("ErrorOf result does not encode: %v", err)
			}
		})
	}
}

func wrap(err error) error { return fmt.Errorf("outer: %w", err) }

func TestSplitEnviron(t *testing.T) {
	var env []string
	for i := range 3000 {
		env = append(env, fmt.Sprintf("SVC_%d_SERVICE_HOST=%s", i, strings.Repeat("x", 90)))
	}
	replies, err := SplitEnviron(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) < 5 {
		t.Fatalf("%d replies for ~300 KiB", len(replies))
	}
	var joined []string
	for i, r := range replies {
		if _, err := AppendMessage(nil, r); err != nil {
			t.Fatalf("reply %d does not fit a frame: %v", i, err)
		}
		if r.More != (i < len(replies)-1) {
			t.Fatalf("reply %d of %d has More=%v", i, len(replies), r.More)
		}
		joined = append(joined, r.Environ...)
	}
	if !reflect.DeepEqual(joined, env) {
		t.Fatal("the replies do not add up to the environment, in order")
	}
	if _, err := SplitEnviron([]string{"HUGE=" + strings.Repeat("v", MaxFrameSize)}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "HUGE") {
		t.Fatalf("an entry over a frame: %v", err)
	}
	if replies, err := SplitEnviron(nil); err != nil || len(replies) != 1 || replies[0].More {
		t.Fatalf("empty environment: %v, %v", replies, err)
	}
}

func repeatSubscriptions(n int, header string) []SubscriptionInfo {
	l := make([]SubscriptionInfo, n)
	for i := range l {
		l[i] = SubscriptionInfo{Port: uint16(i), Mode: ModeSteal, Header: header}
	}
	return l
}

// peerJoinWithLabel encodes a PeerJoin whose label is beyond what check lets a sender write.
func peerJoinWithLabel(label string) []byte {
	b := appendString(nil, "remocal-a")
	b = appendString(b, label)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = append(b, make([]byte, 16)...)
	return Subscribe{Port: 80, Mode: ModeSteal}.appendPayload(b)
}
