package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"
	"testing/iotest"
	"time"
)

func TestReaderPipe(t *testing.T) {
	msgs := []Message{
		Hello{Version: Version, Features: []string{FeatureEnv}, Client: "test"},
		EnvRequest{},
		EnvReply{Environ: maxEnviron()},
		Heartbeat{Seq: 7},
		EnvReply{Environ: []string{"A=1"}}, // smaller than the buffer the Reader already has
		Error{Code: ErrCodeInternal, Reason: "no"},
		Dial{Network: "tcp", Address: "[::1]:80", TimeoutMillis: 100},
		DialReply{Errno: linuxECONNREFUSED, Reason: "refused"},
		FileRequest{Path: "/etc/hosts"},
		FileReply{Data: []byte("127.0.0.1 localhost\n"), More: true},
		FileReply{Errno: linuxEISDIR, Reason: "read /etc: is a directory"},
		FSRequest{Op: FSWrite, Path: "/tmp/x", Mode: 0o600, Data: []byte("a"), More: true},
		FSRequest{Op: FSWrite, Data: []byte("b")},
		FSReply{Entries: []DirEntry{{Name: "..data", Stat: FileStat{Mode: 0o120777}}}, More: true},
		FSReply{Stat: FileStat{Mode: 0o100600, Size: 2}},
	}
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := WriteMessage(pw, m); err != nil {
				written <- err
				pw.CloseWithError(err)
				return
			}
		}
		written <- pw.Close()
	}()
	r := NewReader(pr)
	for i, want := range msgs {
		got, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d = %#v, want %#v", i, got, want)
		}
	}
	if m, err := r.ReadMessage(); err != io.EOF {
		t.Errorf("after the last frame: %#v, %v; want io.EOF", m, err)
	}
	if err := <-written; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestReaderStopsAtFrameEnd: a data stream carries raw bytes after its DialReply, and they must
// stay in the stream.
func TestReaderStopsAtFrameEnd(t *testing.T) {
	b, err := AppendMessage(nil, DialReply{})
	if err != nil {
		t.Fatal(err)
	}
	stream := bytes.NewReader(append(b, "GET / HTTP/1.1\r\n"...))
	if _, err := NewReader(stream).ReadMessage(); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stream)
	if string(rest) != "GET / HTTP/1.1\r\n" {
		t.Errorf("bytes after the frame = %q, want the relayed request untouched", rest)
	}
}

func TestReaderTruncated(t *testing.T) {
	b, err := AppendMessage(nil, Hello{Version: Version, Features: []string{FeatureEnv}, Client: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(b); i++ {
		r := NewReader(iotest.OneByteReader(bytes.NewReader(b[:i])))
		_, err := r.ReadMessage()
		if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream of %d of %d bytes: %v, want ErrTruncated and io.ErrUnexpectedEOF", i, len(b), err)
		}
		if _, again := r.ReadMessage(); again != err {
			t.Fatalf("stream of %d of %d bytes: second read %v, want the same error %v", i, len(b), again, err)
		}
	}
	if _, err := NewReader(bytes.NewReader(nil)).ReadMessage(); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

// TestReaderTooLargeFailsFast: a header announcing 1 GiB, with nothing behind it, must be refused
// from the header alone: without waiting for the payload and without allocating for it.
func TestReaderTooLargeFailsFast(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	header := binary.BigEndian.AppendUint32([]byte{byte(TypeEnvReply)}, 1<<30)
	go func() {
		_, _ = pw.Write(header)
		// Keep the stream open: a Reader that tried to read the payload would hang.
	}()
	type result struct {
		err   error
		alloc uint64
	}
	done := make(chan result, 1)
	go func() {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := NewReader(pr).ReadMessage()
		runtime.ReadMemStats(&after)
		done <- result{err, after.TotalAlloc - before.TotalAlloc}
	}()
	select {
	case res := <-done:
		if !errors.Is(res.err, ErrTooLarge) {
			t.Errorf("ReadMessage = %v, want ErrTooLarge", res.err)
		}
		if res.alloc > 1<<20 {
			t.Errorf("ReadMessage allocated %d bytes refusing a 1 GiB frame", res.alloc)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadMessage still waiting on a frame that announces 1 GiB")
	}
}

// TestReaderStaysInStep: a frame that does not decode has been read whole, so the next one is
// still found; one too large has not, so the Reader stops.
func TestReaderStaysInStep(t *testing.T) {
	good, err := AppendMessage(nil, Heartbeat{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	stream := cat(frame(200, []byte("future")), frame(TypeHeartbeat, []byte{1}), good,
		[]byte{byte(TypeHello), 0xff, 0xff, 0xff, 0xff}, good)
	r := NewReader(bytes.NewReader(stream))
	for i, want := range []error{ErrUnknownType, ErrMalformed, nil, ErrTooLarge, ErrTooLarge} {
		m, err := r.ReadMessage()
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("read %d: %#v, %v; want error %v", i, m, err, want)
		}
		if want == nil && !reflect.DeepEqual(m, Heartbeat{Seq: 1}) {
			t.Fatalf("read %d: %#v, want the heartbeat", i, m)
		}
	}
}

// failOnceReader fails its first read without data, as a stream with a read deadline does.
type failOnceReader struct {
	err    error
	failed bool
	r      io.Reader
}

func (f *failOnceReader) Read(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, f.err
	}
	return f.r.Read(p)
}

func TestReaderErrorBetweenFrames(t *testing.T) {
	b, err := AppendMessage(nil, Heartbeat{Seq: 9})
	if err != nil {
		t.Fatal(err)
	}
	deadline := errors.New("deadline")
	r := NewReader(&failOnceReader{err: deadline, r: bytes.NewReader(b)})
	if _, err := r.ReadMessage(); err != deadline {
		t.Fatalf("first read: %v, want the stream's error as it is", err)
	}
	if m, err := r.ReadMessage(); err != nil || m != (Heartbeat{Seq: 9}) {
		t.Fatalf("read after an error between frames: %#v, %v; want the heartbeat", m, err)
	}
}

func TestReaderErrorInsideFrame(t *testing.T) {
	b, err := AppendMessage(nil, Heartbeat{Seq: 9})
	if err != nil {
		t.Fatal(err)
	}
	reset := errors.New("stream reset")
	stream := io.MultiReader(bytes.NewReader(b[:7]), iotest.ErrReader(reset))
	_, err = NewReader(stream).ReadMessage()
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, reset) {
		t.Errorf("ReadMessage = %v, want ErrTruncated wrapping the stream's error", err)
	}
}
