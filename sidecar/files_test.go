package sidecar

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// readFile asks for path on the control stream and gathers the replies: the data, how many
// replies carried it, and the failure reported.
func readFile(t *testing.T, control *quic.Stream, r *wire.Reader, path string) ([]byte, int, error) {
	t.Helper()
	if err := wire.WriteMessage(control, wire.FileRequest{Path: path}); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for replies := 1; ; replies++ {
		msg, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		reply, ok := msg.(wire.FileReply)
		if !ok {
			t.Fatalf("%s: reply %#v", path, msg)
		}
		if err := reply.Err(); err != nil {
			if reply.More || len(reply.Data) > 0 {
				t.Fatalf("%s: a failure with data or more to come: %#v", path, reply)
			}
			return nil, replies, err
		}
		data = append(data, reply.Data...)
		if !reply.More {
			return data, replies, nil
		}
	}
}

func TestServerReadsFilesOfTheTarget(t *testing.T) {
	procRoot := fakeProc(t, "A=1\x00")
	root := filepath.Join(procRoot, "1", "root")
	write := func(path string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	link := func(path, target string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, path)); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // 200 KiB: several chunks
	write("/srv/big", big, 0o644)
	write("/srv/huge", make([]byte, 300<<10+1), 0o644)
	write("/srv/data.txt", []byte("in the target\n"), 0o644)
	write("/srv/secret", []byte("x"), 0o000)
	// Only the target's root has /srv: a symlink followed outside it would find nothing.
	link("/etc/abs-link", "/srv/data.txt")
	link("/etc/up-link", "../../../../../srv/data.txt")
	link("/etc/loop", "/etc/loop")
	if err := syscall.Mkfifo(filepath.Join(root, "srv", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	client, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	port, pin := startSidecar(t, client, procRoot, func(c *Config) { c.MaxFile = 300 << 10 })
	control, r := openControl(t, dialSidecar(t, client, port, pin), wire.FeatureReadFile)

	t.Run("chunks", func(t *testing.T) {
		data, replies, err := readFile(t, control, r, "/srv/big")
		if err != nil || !bytes.Equal(data, big) {
			t.Fatalf("%d bytes, %v; want the %d written", len(data), err, len(big))
		}
		if want := (len(big) + wire.MaxFileChunk - 1) / wire.MaxFileChunk; replies != want {
			t.Errorf("%d replies, want %d", replies, want)
		}
	})
	t.Run("symlinks resolve in the target's root", func(t *testing.T) {
		for _, path := range []string{"/etc/abs-link", "/etc/up-link"} {
			if data, _, err := readFile(t, control, r, path); err != nil || string(data) != "in the target\n" {
				t.Errorf("%s: %q, %v", path, data, err)
			}
		}
	})
	t.Run("an empty file", func(t *testing.T) {
		write("/srv/empty", nil, 0o644)
		if data, replies, err := readFile(t, control, r, "/srv/empty"); err != nil || len(data) != 0 || replies != 1 {
			t.Errorf("%q in %d replies, %v", data, replies, err)
		}
	})
	t.Run("a fifo does not hold the stream", func(t *testing.T) {
		start := time.Now()
		if data, _, err := readFile(t, control, r, "/srv/fifo"); err != nil || len(data) != 0 {
			t.Errorf("fifo without a writer: %q, %v", data, err)
		}
		if took := time.Since(start); took > fileReadTimeout/2 {
			t.Errorf("took %s", took)
		}
	})
	t.Run("errno", func(t *testing.T) {
		tests := map[string]syscall.Errno{
			"/etc/missing":          syscall.ENOENT,
			"/srv/big/x":            syscall.ENOTDIR,
			"/etc":                  syscall.EISDIR,
			"/":                     syscall.EISDIR,
			"/etc/loop":             syscall.ELOOP,
			"/srv/huge":             syscall.EFBIG,
			"etc/resolv.conf":       syscall.EINVAL,
			"":                      syscall.EINVAL,
			"/etc/../srv/data.txt":  syscall.EINVAL,
			"/srv/..":               syscall.EINVAL,
			"/srv/data.txt\x00.bak": syscall.EINVAL,
		}
		if os.Geteuid() != 0 { // root reads a file of mode 0 all the same
			tests["/srv/secret"] = syscall.EACCES
		}
		for path, want := range tests {
			if _, _, err := readFile(t, control, r, path); !errors.Is(err, want) {
				t.Errorf("%q: %v, want %v", path, err, want)
			}
		}
	})
	t.Run("reasons name the file asked for", func(t *testing.T) {
		_, _, err := readFile(t, control, r, "/etc/missing")
		if err == nil || err.Error() != "open /etc/missing: no such file or directory" {
			t.Errorf("%v", err)
		}
	})
	t.Run("a silent fifo times out", func(t *testing.T) {
		if testing.Short() {
			t.Skipf("waits %s", fileReadTimeout)
		}
		w, err := os.OpenFile(filepath.Join(root, "srv", "fifo"), os.O_RDWR, 0) // a writer that never writes
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, _, err := readFile(t, control, r, "/srv/fifo"); !errors.Is(err, syscall.ETIMEDOUT) {
			t.Errorf("%v, want ETIMEDOUT", err)
		}
	})
}
