//go:build linux

package layer

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// stalePrefix begins the name of a supervisor's directory, followed by the plugin's pid: the
// directory holds the files served by bind mount (the pod's resolv.conf, a subPath Secret),
// which a plugin that was killed leaves behind.
const stalePrefix = "remocal-layer-"

// dirPattern is the os.MkdirTemp pattern of this process's supervisor directories.
func dirPattern() string { return stalePrefix + strconv.Itoa(os.Getpid()) + "-" }

// removeStale removes the supervisor directories in tmp that the user's plugins left when they
// died without Close, so that the pod's files do not stay on disk beyond the next start. A
// directory is judged by the pid in its name: one whose process is gone is removed; one of
// another user, or of a live process (its own, or one that reused the pid), is left alone.
func removeStale(tmp string, log *slog.Logger) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), stalePrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil || int(st.Uid) != os.Getuid() || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Debug("remove a dead plugin's layer directory", "dir", dir, "err", err)
		}
	}
}

// processAlive tells whether process pid exists, as far as signal 0 can tell: EPERM is a
// process of another user, alive.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
