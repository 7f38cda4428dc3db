// Package daemon starts the test cluster's long-running processes detached from the harness and
// stops exactly those processes later, from another invocation of the harness.
//
// A PID file records the PID together with the process's start time (field 22 of
// /proc/PID/stat), so a PID that the kernel has since reused for an unrelated process is never
// signalled: the harness stops what it started, by PID, and nothing else.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec describes one process to start.
type Spec struct {
	Name string
	Path string
	Args []string
	Env  []string // added to the harness's own environment
	Dir  string   // working directory; empty means the harness's
}

// Dirs holds where PID files and logs go.
type Dirs struct {
	PIDs string
	Logs string
}

// PIDFile is the path of name's PID file.
func (d Dirs) PIDFile(name string) string { return filepath.Join(d.PIDs, name+".pid") }

// LogFile is the path of name's log.
func (d Dirs) LogFile(name string) string { return filepath.Join(d.Logs, name+".log") }

// Process is a started process. Exited is closed when it ends while the harness still runs, so a
// readiness wait can fail at once with the exit status instead of timing out.
type Process struct {
	Name   string
	PID    int
	Log    string
	Exited <-chan struct{}
	err    *error
}

// ExitErr returns how the process ended; valid after Exited is closed.
func (p *Process) ExitErr() error { return *p.err }

// Start runs s in a new session (so a Ctrl-C of the harness or the end of `make` does not reach
// it), with output appended to its log, and records its PID file.
func Start(d Dirs, s Spec) (*Process, error) {
	if err := os.MkdirAll(d.PIDs, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.Logs, 0o755); err != nil {
		return nil, err
	}
	logPath := d.LogFile(s.Name)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "\n=== %s start %s %s\n", time.Now().Format(time.RFC3339), s.Path, strings.Join(s.Args, " "))

	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	start, err := startTime(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	record := fmt.Sprintf("%d %d\n", cmd.Process.Pid, start)
	if err := os.WriteFile(d.PIDFile(s.Name), []byte(record), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		// Reaps the child if it dies while the harness runs; once the harness exits, init
		// adopts the process instead.
		waitErr = cmd.Wait()
		close(exited)
	}()
	return &Process{Name: s.Name, PID: cmd.Process.Pid, Log: logPath, Exited: exited, err: &waitErr}, nil
}

// Running reports the PID of name's process if its PID file names a live process that is still
// the one the harness started.
func Running(d Dirs, name string) (int, bool) {
	pid, start, err := readPIDFile(d.PIDFile(name))
	if err != nil {
		return 0, false
	}
	return pid, alive(pid, start)
}

// Stop ends name's process: SIGTERM, then SIGKILL after grace. It removes the PID file. A missing
// PID file or a process that is already gone is not an error.
func Stop(ctx context.Context, d Dirs, name string, grace time.Duration) error {
	path := d.PIDFile(name)
	pid, start, err := readPIDFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		// An unreadable PID file names nothing we can safely signal.
		return os.Remove(path)
	}
	if alive(pid, start) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(ctx, pid, start, grace) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !waitGone(ctx, pid, start, 5*time.Second) {
				return fmt.Errorf("stop %s: pid %d did not exit after SIGKILL", name, pid)
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func waitGone(ctx context.Context, pid int, start uint64, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !alive(pid, start) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return !alive(pid, start)
}

func readPIDFile(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, 0, fmt.Errorf("malformed pid file %s", path)
	}
	if pid, err = strconv.Atoi(fields[0]); err != nil {
		return 0, 0, fmt.Errorf("malformed pid file %s: %w", path, err)
	}
	if start, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("malformed pid file %s: %w", path, err)
	}
	return pid, start, nil
}

// alive reports whether pid runs, is not a zombie, and started at start.
func alive(pid int, start uint64) bool {
	st, state, err := stat(pid)
	return err == nil && st == start && state != "Z" && state != "X"
}

func startTime(pid int) (uint64, error) {
	st, _, err := stat(pid)
	return st, err
}

// stat reads the state and start time of pid. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func stat(pid int) (start uint64, state string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0], err
}
