//go:build linux

package layer

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The served files a killed plugin left in its directory go at the next start; the
// directories of live processes stay.
func TestStaleDirectoriesOfDeadPluginsAreRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "files"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "files", "0"), []byte("the pod's secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk("remocal-layer-" + strconv.Itoa(dead.Process.Pid) + "-123")
	live := mk("remocal-layer-" + strconv.Itoa(os.Getppid()) + "-456")
	other := mk("remocal-layer-nobody-789")
	older := mk("remocal-layer-123456")

	s := newTestSupervisor(t, Config{Files: map[string][]byte{"/etc/resolv.conf": []byte("nameserver 198.19.0.10\n")}})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead plugin's %s is still there (%v)", stale, err)
	}
	for _, dir := range []string{live, other, older} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", dir, err)
		}
	}
	if want := filepath.Join(tmp, "remocal-layer-"+strconv.Itoa(os.Getpid())+"-"); !strings.HasPrefix(s.dir, want) {
		t.Errorf("the supervisor's directory %s does not name its pid (%s...)", s.dir, want)
	}
	removeStale(tmp, slog.New(slog.DiscardHandler)) // this process is alive: its directory stays
	if _, err := os.Stat(s.dir); err != nil {
		t.Errorf("a live supervisor's directory was removed: %v", err)
	}
}
