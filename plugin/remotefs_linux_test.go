package plugin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar"
)

// realSidecar runs the sidecar on loopback for a fake /proc whose target (PID 1) has root as
// its root, and returns a session with it that serves the target's files. The session has no
// control stream: filesystem operations need none.
func realSidecar(t *testing.T, root string, maxFile int64) *session {
	t.Helper()
	procRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(procRoot, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(procRoot, "1", "comm"), []byte("app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(procRoot, "1", "root")); err != nil {
		t.Fatal(err)
	}
	clientID, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port := testnet.FreePort(t)
	cfg := sidecar.NewConfig()
	cfg.ClientPin, cfg.Port, cfg.ProcRoot, cfg.MaxFile = clientID.Fingerprint(), port, procRoot, maxFile
	logs, logw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sidecar.Run(ctx, cfg, slog.New(slog.NewJSONHandler(logw, nil))); logw.Close() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
	lines := bufio.NewReader(logs)
	first, err := lines.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, lines) //nolint:errcheck // drains the rest of the log
	var start struct{ Fingerprint string }
	if err := json.Unmarshal(first, &start); err != nil {
		t.Fatal(err)
	}

	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer dcancel()
	conn, err := transport.Dial(dctx, udp, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, transport.ClientTLS(clientID, start.Fingerprint))
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	s := &session{conn: conn, closers: []io.Closer{udp}, hello: wire.HelloReply{Version: wire.Version, Features: []string{wire.FeatureFS}}}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSessionFSAgainstTheSidecar: the client methods and the sidecar agree, on a target root
// laid out like a pod's, with a ConfigMap volume and a link that leads out of it if followed
// anywhere but inside.
func TestSessionFSAgainstTheSidecar(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	const version = "..2024_01_01_00_00_00.000000001"
	if err := os.MkdirAll(filepath.Join(root, "etc", "config", version), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "config", version, "app.yaml"), []byte("key: value\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"etc/config/..data": version, "etc/config/app.yaml": "..data/app.yaml", "out": outside} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	s := realSidecar(t, root, 1<<20)
	ctx := t.Context()

	entries, err := s.ReadDir(ctx, "/etc/config")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{version, "..data", "app.yaml"}) {
		t.Fatalf("ReadDir of a ConfigMap volume = %q, %v", names, err)
	}
	if data, st, err := s.ReadFileLimit(ctx, "/etc/config/app.yaml", 0); err != nil || string(data) != "key: value\n" || st.Size != int64(len(data)) {
		t.Errorf("ReadFileLimit through ..data = %q, %+v, %v", data, st, err)
	}
	if target, err := s.ReadLink(ctx, "/etc/config/..data"); err != nil || target != version {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	if st, err := s.Lstat(ctx, "/etc/config/app.yaml"); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("Lstat of a link = %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, "/etc/config/app.yaml"); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("Stat through a link = %+v, %v", st, err)
	}

	content := bytes.Repeat([]byte("pod file "), 300<<10/9) // several chunks each way
	if st, err := s.Mkdir(ctx, "/srv", 0o750); err != nil || st.Mode != syscall.S_IFDIR|0o750 {
		t.Fatalf("Mkdir = %+v, %v", st, err)
	}
	if st, err := s.WriteFile(ctx, "/srv/data", content, 0o600); err != nil || st.Size != int64(len(content)) || st.Mode != syscall.S_IFREG|0o600 {
		t.Fatalf("WriteFile = %+v, %v", st, err)
	}
	if data, _, err := s.ReadFileLimit(ctx, "/srv/data", 0); err != nil || !bytes.Equal(data, content) {
		t.Errorf("ReadFileLimit of what was written = %d bytes, %v", len(data), err)
	}
	if _, _, err := s.ReadFileLimit(ctx, "/srv/data", int64(len(content))-1); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("ReadFileLimit under the file's size: %v, want EFBIG", err)
	}
	if _, err := s.WriteFile(ctx, "/srv/too-big", make([]byte, 4<<20), 0o600); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("WriteFile over the sidecar's bound: %v, want EFBIG", err)
	}
	if st, err := s.Symlink(ctx, "data", "/srv/link"); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("Symlink = %+v, %v", st, err)
	}
	if err := s.Rename(ctx, "/srv/link", "/srv/renamed"); err != nil {
		t.Errorf("Rename: %v", err)
	}
	if err := s.Remove(ctx, "/srv", true); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove of a full directory: %v, want ENOTEMPTY", err)
	}
	for _, p := range []string{"/srv/renamed", "/srv/data"} {
		if err := s.Remove(ctx, p, false); err != nil {
			t.Errorf("Remove %s: %v", p, err)
		}
	}
	if err := s.Remove(ctx, "/srv", true); err != nil {
		t.Errorf("Remove of the emptied directory: %v", err)
	}
	if _, err := s.Lstat(ctx, "/srv"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Lstat of what was removed: %v, want ENOENT", err)
	}
	if _, err := s.WriteFile(ctx, "/out/planted", []byte("x"), 0o644); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("WriteFile through a link out of the root: %v, want ENOENT", err)
	}
	if planted, _ := os.ReadDir(outside); len(planted) != 0 {
		t.Errorf("the directory outside the root holds %v", planted)
	}
}
