package sidecarclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestSessionNamesTheTarget(t *testing.T) {
	var mu sync.Mutex
	var got []wire.Message
	requests := func() []wire.Message {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	answer := func(w io.Writer, req wire.Message) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		if m, ok := req.(wire.Target); ok && m.ContainerID == "gone" {
			_ = wire.WriteMessage(w, wire.Error{Code: wire.ErrCodeProtocol, Reason: "no process of container gone"})
			return
		}
		_ = wire.WriteMessage(w, wire.TargetReply{PID: 12})
	}
	s := fakeSidecar{features: features(false), answer: answer}.session(t)
	if err := s.NameTarget(t.Context(), "4f1c"); err != nil {
		t.Fatal(err)
	}
	if r := requests(); !slices.Equal(r, []wire.Message{wire.Target{ContainerID: "4f1c"}}) {
		t.Errorf("the sidecar got %#v", r)
	}
	var refused *RefusedError
	if err := s.NameTarget(t.Context(), "gone"); !errors.As(err, &refused) || !strings.Contains(err.Error(), "no process of container gone") {
		t.Errorf("a refused ID: %v, want a refusal with the sidecar's reason", err)
	}

	// An older sidecar, or no ID in the status: nothing is asked, today's choice stays.
	mu.Lock()
	got = nil
	mu.Unlock()
	old := fakeSidecar{features: []string{wire.FeatureEnv}, answer: answer}.session(t)
	if err := old.NameTarget(t.Context(), "4f1c"); err != nil || len(requests()) != 0 {
		t.Errorf("older sidecar: %v, requests %#v; want none", err, requests())
	}
	if err := s.NameTarget(t.Context(), ""); err != nil || len(requests()) != 0 {
		t.Errorf("no ID: %v, requests %#v; want none", err, requests())
	}
}

// fileReplies is a file's content as the sidecar sends it: in chunks, all but the last with More.
func fileReplies(w io.Writer, data []byte) {
	for {
		chunk := data[:min(len(data), wire.MaxFileChunk)]
		data = data[len(chunk):]
		if wire.WriteMessage(w, wire.FileReply{Data: chunk, More: len(data) > 0}) != nil || len(data) == 0 {
			return
		}
	}
}

// bigEnviron is about 300 KiB of service-link variables.
func bigEnviron() []string {
	var env []string
	for i := range 3000 {
		env = append(env, fmt.Sprintf("SVC_%d_SERVICE_HOST=%s", i, strings.Repeat("h", 90)))
	}
	return env
}

func TestSessionEnvironInChunks(t *testing.T) {
	want := bigEnviron()
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, req wire.Message) {
			switch req.(type) {
			case wire.EnvRequest:
				replies, err := wire.SplitEnviron(want)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range replies {
					_ = wire.WriteMessage(w, r)
				}
			case wire.FileRequest:
				fileReplies(w, []byte("next"))
			}
		},
	}.session(t)
	got, err := s.Environ(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d variables, want the %d sent, in order", len(got), len(want))
	}
	// The whole answer was read: the next request gets its own.
	if data, err := s.ReadFile(t.Context(), "/etc/hostname"); err != nil || string(data) != "next" {
		t.Fatalf("the request after: %q, %v", data, err)
	}
}

func TestSessionEnvironOverTheLimit(t *testing.T) {
	entry := "K=" + strings.Repeat("v", 60<<10)
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, req wire.Message) {
			if _, ok := req.(wire.FileRequest); ok {
				fileReplies(w, []byte("stale"))
				return
			}
			// A broken sidecar whose environment never ends.
			for wire.WriteMessage(w, wire.EnvReply{Environ: []string{entry}, More: true}) == nil {
			}
		},
	}.session(t)
	_, err := s.Environ(t.Context())
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("Environ = %v, want the limit", err)
	}
	// The rest of that answer is unread: later requests fail instead of taking it for theirs.
	if data, err := s.ReadFile(t.Context(), "/etc/hosts"); err == nil {
		t.Fatalf("a request after an abandoned answer got %q", data)
	}
}

func TestSessionEnvironRefused(t *testing.T) {
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, _ wire.Message) {
			_, err := wire.SplitEnviron([]string{"HUGE_CERT=" + strings.Repeat("c", 70<<10)})
			_ = wire.WriteMessage(w, wire.ErrorOf(err))
		},
	}.session(t)
	_, err := s.Environ(t.Context())
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "HUGE_CERT") || !errors.Is(err, wire.Error{Code: wire.ErrCodeTooLarge}) {
		t.Fatalf("Environ = %v, want a refusal naming HUGE_CERT", err)
	}
}

func TestSessionReadFile(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	failures := map[string]syscall.Errno{
		"/etc/missing": syscall.ENOENT,
		"/etc":         syscall.EISDIR,
		"/etc/hosts/x": syscall.ENOTDIR,
		"/root/secret": syscall.EACCES,
		"/var/huge":    syscall.EFBIG,
		"etc/hosts":    syscall.EINVAL,
	}
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, req wire.Message) {
			path := req.(wire.FileRequest).Path
			if errno, ok := failures[path]; ok {
				_ = wire.WriteMessage(w, wire.FileReply{Errno: wire.ErrnoOf(errno), Reason: "open " + path + ": " + errno.Error()})
				return
			}
			fileReplies(w, big)
		},
	}.session(t)
	data, err := s.ReadFile(t.Context(), "/srv/big")
	if err != nil || !bytes.Equal(data, big) {
		t.Fatalf("ReadFile = %d bytes, %v; want the %d sent", len(data), err, len(big))
	}
	for path, want := range failures {
		if _, err := s.ReadFile(t.Context(), path); !errors.Is(err, want) {
			t.Errorf("ReadFile(%q) = %v, want %v", path, err, want)
		}
	}
}

// TestSessionReadFileConcurrently: requests from many goroutines each get their own answer.
func TestSessionReadFileConcurrently(t *testing.T) {
	content := func(path string) []byte { return bytes.Repeat([]byte(path+";"), 100<<10/len(path)) } // two chunks
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, req wire.Message) {
			fileReplies(w, content(req.(wire.FileRequest).Path))
		},
	}.session(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				path := fmt.Sprintf("/srv/%d/%d", g, i)
				if data, err := s.ReadFile(t.Context(), path); err != nil || !bytes.Equal(data, content(path)) {
					t.Errorf("ReadFile(%s) = %.40q..., %v", path, data, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSessionReadFileOverTheLimit(t *testing.T) {
	chunk := make([]byte, wire.MaxFileChunk)
	s := fakeSidecar{
		features: features(false),
		answer: func(w io.Writer, _ wire.Message) {
			for wire.WriteMessage(w, wire.FileReply{Data: chunk, More: true}) == nil {
			}
		},
	}.session(t)
	if _, err := s.ReadFile(t.Context(), "/dev/zero"); err == nil || !strings.Contains(err.Error(), "the most a file may have") {
		t.Fatalf("ReadFile = %v, want the limit", err)
	}
}

func TestSessionReadFileNeedsTheFeature(t *testing.T) {
	s := fakeSidecar{features: []string{wire.FeatureEnv}}.session(t)
	var missing *FeatureError
	if _, err := s.ReadFile(t.Context(), "/etc/hosts"); !errors.As(err, &missing) || missing.Feature != wire.FeatureReadFile {
		t.Fatalf("ReadFile from a sidecar without %s = %v, want a FeatureError", wire.FeatureReadFile, err)
	}
}

// A control request ends with its context, even when the sidecar never answers, and the
// stream it leaves out of step serves no later request.
func TestControlRequestEndsWithItsContext(t *testing.T) {
	silent := func(io.Writer, wire.Message) {}
	s := fakeSidecar{features: features(false), answer: silent}.session(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Environ(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Environ from a silent sidecar = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Environ returned %s after its context ended", d)
	}
	if _, err := s.Environ(t.Context()); err == nil {
		t.Error("a request after the abandoned one succeeded on the out-of-step stream")
	}
}
