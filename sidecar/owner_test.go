package sidecar

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the owner opener, as the sidecar's binary is: openAsOwner
// starts /proc/self/exe.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == OwnerOpenerArg {
		os.Exit(RunOwnerOpener(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// The opener runs with the user and group it is given, and nothing more: it opens a file only
// that user may read, another user's open is refused with the open's own errno, and the
// descriptor it hands back reads the file.
func TestOpenAsOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("starting a process as another user needs root")
	}
	const owner, stranger = 65534, 12345
	// Not t.TempDir, whose parent only root may search.
	dir, err := os.MkdirTemp("", "owner")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("for the owner"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, owner, owner); err != nil {
		t.Fatal(err)
	}

	fd, err := openAsOwner(t.Context(), path, unix.O_RDONLY, owner, owner)
	if err != nil {
		t.Fatalf("as the owner: %v", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if b, err := io.ReadAll(f); err != nil || string(b) != "for the owner" {
		t.Fatalf("read through the handed-back descriptor: %q, %v", b, err)
	}

	if _, err := openAsOwner(t.Context(), path, unix.O_RDONLY, stranger, stranger); !errors.Is(err, unix.EACCES) {
		t.Errorf("as another user: %v, want EACCES", err)
	}
	if _, err := openAsOwner(t.Context(), filepath.Join(dir, "missing"), unix.O_RDONLY, owner, owner); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a missing file: %v, want ENOENT", err)
	}
}

// The owner and start time come from files anyone may read.
func TestProcessOwnerAndStart(t *testing.T) {
	uid, gid, err := processOwner("/proc", os.Getpid())
	if err != nil || uid != uint32(os.Getuid()) || gid != uint32(os.Getgid()) {
		t.Fatalf("processOwner = %d, %d, %v; want %d, %d", uid, gid, err, os.Getuid(), os.Getgid())
	}
	if processStart("/proc", os.Getpid()) == "" {
		t.Fatal("no start time for this process")
	}
	if processStart("/proc", 1<<22+1) != "" {
		t.Fatal("a start time for a process that cannot exist")
	}
}
