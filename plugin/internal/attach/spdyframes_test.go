package attach

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// recordingConn keeps each Write's bytes apart, and passes them on to Conn when it is set.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	if c.Conn == nil {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *recordingConn) recorded() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// frame is a SPDY frame of a body of n bytes: a data frame on stream 1, or a control frame.
func frame(control bool, n int, fill byte) []byte {
	f := make([]byte, 8+n)
	if control {
		binary.BigEndian.PutUint32(f, 0x80030001) // SPDY/3 SYN_STREAM
	} else {
		binary.BigEndian.PutUint32(f, 1)
	}
	binary.BigEndian.PutUint32(f[4:], uint32(n))
	for i := 8; i < len(f); i++ {
		f[i] = fill
	}
	return f
}

// pieces cuts b at the offsets given.
func pieces(b []byte, cuts ...int) [][]byte {
	var out [][]byte
	last := 0
	for _, c := range cuts {
		out = append(out, b[last:c])
		last = c
	}
	return append(out, b[last:])
}

func TestFrameConnSendsWholeFrames(t *testing.T) {
	data := frame(false, 6, 'd')
	control := frame(true, 10, 'c')
	empty := frame(false, 0, 0)
	big := frame(false, 1<<20, 'b')
	for _, tt := range []struct {
		name   string
		writes [][]byte
		want   [][]byte
	}{
		{name: "a data frame as the framer writes it", writes: pieces(data, 4, 8), want: [][]byte{data}},
		{name: "a control frame field by field", writes: pieces(control, 2, 4, 5, 8, 12, 14), want: [][]byte{control}},
		{name: "a frame already whole", writes: [][]byte{control}, want: [][]byte{control}},
		{name: "an empty data frame (a FIN)", writes: pieces(empty, 4), want: [][]byte{empty}},
		{name: "frames one after another", writes: append(pieces(data, 4, 8), pieces(control, 8)...), want: [][]byte{data, control}},
		{name: "two frames in one write", writes: [][]byte{append(bytes.Clone(data), control...)}, want: [][]byte{append(bytes.Clone(data), control...)}},
		{name: "a write across two frames", writes: pieces(append(bytes.Clone(data), control...), 4, 16, 18), want: [][]byte{append(bytes.Clone(data), control...)}},
		{
			name:   "a large frame in the pieces it came in, then whole frames again",
			writes: append(pieces(big, 4, 8), pieces(data, 4, 8)...),
			want:   [][]byte{big[:8], big[8:], data},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingConn{}
			c := &frameConn{Conn: rec}
			for _, w := range tt.writes {
				if n, err := c.Write(w); n != len(w) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(w), n, err)
				}
			}
			got := rec.recorded()
			if len(got) != len(tt.want) {
				t.Fatalf("%d writes reached the connection, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("write %d: %d bytes, not the %d bytes wanted", i, len(got[i]), len(tt.want[i]))
				}
			}
		})
	}
}

// Under the SPDY connection of a real port-forward client, every write on the wire is whole
// frames, and a stream's bytes arrive as they were sent.
func TestFrameConnUnderSPDY(t *testing.T) {
	client, server := net.Pipe()
	rec := &recordingConn{Conn: client}
	streams := make(chan httpstream.Stream, 1)
	srv, err := spdy.NewServerConnection(server, func(s httpstream.Stream, replySent <-chan struct{}) error {
		streams <- s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := spdy.NewClientConnection(&frameConn{Conn: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	s, err := conn.CreateStream(http.Header{"Streamtype": {"data"}})
	if err != nil {
		t.Fatal(err)
	}
	var sent bytes.Buffer
	for i, n := range []int{1, 6, 100, 4 << 10, 64 << 10} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		sent.Write(p)
		if _, err := s.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var peer httpstream.Stream
	select {
	case peer = <-streams:
	case <-time.After(10 * time.Second):
		t.Fatal("no stream arrived")
	}
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatalf("%d bytes arrived, not the %d sent", len(got), sent.Len())
	}
	// Each write ends on a frame's end, but for a large frame's header, which goes out alone
	// just before its data.
	var check framing
	writes := rec.recorded()
	for i, w := range writes {
		if !check.advance(w) && (len(w) > maxHeld || i+1 == len(writes) || len(writes[i+1]) <= maxHeld) {
			t.Fatalf("write %d (%d bytes) ends within a frame", i, len(w))
		}
	}
}
