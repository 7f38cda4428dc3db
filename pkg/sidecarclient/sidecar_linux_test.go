package sidecarclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/testnet"
	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/sidecar"
)

// The client against the sidecar itself, in process on loopback: what the fake sidecar
// (fake_test.go) cannot show is that both ends agree.

// appID is the target container's ID in the fake /proc.
const appID = "4f1c8e2a9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e"

// fakeProc is a /proc whose target (PID 1) has root as its root, environ as its environment
// and runs in the container appID.
func fakeProc(t testing.TB, root, environ string) string {
	t.Helper()
	procRoot := t.TempDir()
	dir := filepath.Join(procRoot, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"comm": "app\n", "environ": environ, "cgroup": "0::/../cri-containerd-" + appID + ".scope\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(root, filepath.Join(dir, "root")); err != nil {
		t.Fatal(err)
	}
	return procRoot
}

// realSidecar is the sidecar running in process for a client key.
type realSidecar struct {
	client transport.Identity
	port   int
	pin    string // the sidecar's key, from its first log line
	stop   context.CancelFunc
}

// startSidecar runs the sidecar on loopback for the target of procRoot, configured by
// configure, until the test ends or stop.
func startSidecar(t testing.TB, procRoot string, configure ...func(*sidecar.Config)) *realSidecar {
	t.Helper()
	clientID, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cfg := sidecar.NewConfig()
	cfg.ClientPin, cfg.Port, cfg.ProcRoot = clientID.Fingerprint(), testnet.FreePort(t), procRoot
	for _, c := range configure {
		c(&cfg)
	}
	ctx, stop := context.WithCancel(t.Context())
	logs, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		defer logw.Close()
		done <- sidecar.Run(ctx, cfg, slog.New(slog.NewJSONHandler(logw, nil)))
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
	// The sidecar's first log line names its key, which the session pins, as the plugin
	// reads it from the pod's log.
	lines := bufio.NewReader(logs)
	first, err := lines.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, lines) //nolint:errcheck // drains the rest of the log
	start, err := sidecarapi.ParseStartLine(first)
	if err != nil {
		t.Fatal(err)
	}
	return &realSidecar{client: clientID, port: cfg.Port, pin: start.Fingerprint, stop: stop}
}

// session connects to the sidecar over the direct path and says hello.
func (r *realSidecar) session(t testing.TB, opts Options) *Session {
	t.Helper()
	s, err := connect(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: r.port}, transport.ClientTLS(r.client, r.pin), opts)
	if err != nil {
		t.Fatal(err)
	}
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
	s := startSidecar(t, fakeProc(t, root, ""), func(c *sidecar.Config) { c.MaxFile = 1 << 20 }).session(t, Options{})
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

// TestSessionAgainstTheSidecar: the control stream's requests and the dials, as the sidecar
// answers them.
func TestSessionAgainstTheSidecar(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "resolv.conf"), []byte("nameserver 198.19.0.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSidecar(t, fakeProc(t, root, "A=1\x00SECRET=s3cret\x00")).session(t, Options{})
	ctx := t.Context()

	if err := s.NameTarget(ctx, appID); err != nil {
		t.Fatalf("NameTarget of the target's container: %v", err)
	}
	var refused *RefusedError
	if err := s.NameTarget(ctx, "containerd://4f1c"); !errors.As(err, &refused) || !strings.Contains(err.Error(), "not a container ID") {
		t.Errorf("NameTarget of what is no container ID = %v, want a refusal", err)
	}
	if env, err := s.Environ(ctx); err != nil || !slices.Equal(env, []string{"A=1", "SECRET=s3cret"}) {
		t.Errorf("Environ = %q, %v", env, err)
	}
	if data, err := s.ReadFile(ctx, "/etc/resolv.conf"); err != nil || string(data) != "nameserver 198.19.0.10\n" {
		t.Errorf("ReadFile = %q, %v", data, err)
	}
	if _, err := s.ReadFile(ctx, "/etc/hosts"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("ReadFile of a file the pod has not: %v, want ENOENT", err)
	}

	tcp, err := s.Dial(ctx, "tcp", testnet.TCPEcho(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if _, err := tcp.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// Our end passes through as a half-close: the echo ends its side after answering.
	if err := tcp.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(tcp); err != nil || string(data) != "ping" {
		t.Errorf("TCP through the pod: %q, %v", data, err)
	}
	udp, err := s.Dial(ctx, "udp", testnet.UDPEcho(t, "echo:"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Abandon()
	if err := wire.WriteDatagram(udp, []byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := wire.ReadDatagram(udp, buf); err != nil || string(buf[:n]) != "echo:query" {
		t.Errorf("UDP through the pod: %q, %v", buf[:n], err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := s.Dial(ctx, "tcp", closed.Addr().String(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial of a closed port: %v, want ECONNREFUSED", err)
	}
}

// TestSessionTakesPortsAtTheSidecar: a steal, as the sidecar's listings show it, refused to
// another session, and given back when the session closes. In a network namespace of its own:
// it changes nftables.
func TestSessionTakesPortsAtTheSidecar(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	sc := startSidecar(t, fakeProc(t, t.TempDir(), ""))
	alice, bob := sc.session(t, Options{Label: "alice@laptop"}), sc.session(t, Options{Inspect: true})
	ctx := t.Context()
	const port = 8000
	steal := Subscription{Mode: wire.ModeSteal}
	if err := alice.Subscribe(ctx, port, steal); err != nil {
		t.Fatal(err)
	}
	if !alice.CanRedirect() {
		t.Error("a sidecar with NET_ADMIN says it cannot redirect")
	}
	if err := bob.Subscribe(ctx, port, steal); !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "another session") {
		t.Errorf("a second session's steal of the port: %v, want EADDRINUSE", err)
	}
	subs, err := bob.Subscriptions(ctx)
	if err != nil || len(subs) != 1 || subs[0].Port != port || subs[0].Mode != wire.ModeSteal || subs[0].Mine {
		t.Errorf("Subscriptions = %+v, %v; want alice's steal of %d", subs, err, port)
	}
	// The label went with alice's hello, before her first request: bob sees it with her port.
	sessions, err := bob.Sessions(ctx)
	if err != nil || len(sessions) != 1 || sessions[0].Label != "alice@laptop" || sessions[0].Mine ||
		!slices.Equal(sessions[0].Ports, []wire.SessionPort{{Port: port, Mode: wire.ModeSteal}}) {
		t.Errorf("Sessions = %+v, %v; want alice's, labelled, with her steal of %d", sessions, err, port)
	}
	tables, err := bob.Redirects(ctx, true)
	if err != nil || len(tables) != 1 || !tables[0].Live || !slices.Equal(tables[0].Ports, []uint16{port}) {
		t.Errorf("Redirects = %+v, %v; want one live table for %d", tables, err, port)
	}

	alice.Close()
	if err := bob.Subscribe(ctx, port, steal); err != nil {
		t.Fatalf("the port after the session that held it closed: %v", err)
	}
	if err := bob.Unsubscribe(ctx, port); err != nil {
		t.Fatal(err)
	}
	if tables, err := bob.Redirects(ctx, false); err != nil || len(tables) != 0 {
		t.Errorf("Redirects after the last port was given back = %+v, %v; want none", tables, err)
	}
}

// TestSessionServesMirroredConnections: a connection to a mirrored port comes to the session
// as the copy of what its client sent, with the port and the client. In a network namespace
// of its own: the packet capture sees all of loopback.
func TestSessionServesMirroredConnections(t *testing.T) {
	if !testnet.InOwnNetns(t) {
		return
	}
	app := testnet.TCPEcho(t)
	port := netip.MustParseAddrPort(app).Port()
	s := startSidecar(t, fakeProc(t, t.TempDir(), "")).session(t, Options{})
	ins := serveIncoming(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Subscribe(ctx, port, Subscription{Mode: wire.ModeMirror}); err != nil {
		t.Fatal(err)
	}
	if subs, err := s.Subscriptions(ctx); err != nil || len(subs) != 1 || !subs[0].Capture || !subs[0].Mine {
		t.Fatalf("Subscriptions = %+v, %v; want this session's mirror by capture", subs, err)
	}
	client, err := net.Dial("tcp", app)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// The app still answers.
	if answer, err := io.ReadAll(io.LimitReader(client, 5)); err != nil || string(answer) != "hello" {
		t.Fatalf("the app answered %q, %v", answer, err)
	}
	in := nextIncoming(ins, 10*time.Second)
	if in == nil {
		t.Fatal("the sidecar passed on no copy of the connection")
	}
	defer in.Close()
	if in.Port != port || in.Remote != client.LocalAddr().String() {
		t.Errorf("ServeIncoming handed over port %d from %s, want %d from %s", in.Port, in.Remote, port, client.LocalAddr())
	}
	client.Close()
	if data, err := io.ReadAll(in); err != nil || string(data) != "hello" {
		t.Errorf("the copy = %q, %v; want what the client sent", data, err)
	}
}

// TestSessionEndsAtTheSidecarsMaxLifetime: the sidecar's end at its maximum lifetime is told
// apart from its other ends.
func TestSessionEndsAtTheSidecarsMaxLifetime(t *testing.T) {
	ended := func(s *Session) error {
		t.Helper()
		select {
		case <-s.Done():
			return s.Err()
		case <-time.After(10 * time.Second):
			t.Fatal("the session goes on")
			return nil
		}
	}
	short := startSidecar(t, fakeProc(t, t.TempDir(), ""), func(c *sidecar.Config) { c.MaxLifetime = time.Second })
	if err := ended(short.session(t, Options{})); !errors.Is(err, ErrMaxLifetime) {
		t.Errorf("the end at the sidecar's maximum lifetime: %v, want ErrMaxLifetime", err)
	}
	stopped := startSidecar(t, fakeProc(t, t.TempDir(), ""))
	s := stopped.session(t, Options{})
	stopped.stop()
	if err := ended(s); err == nil || errors.Is(err, ErrMaxLifetime) {
		t.Errorf("the end of a sidecar stopped: %v, want another", err)
	}
}
