package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartRunningStop(t *testing.T) {
	d := Dirs{PIDs: t.TempDir(), Logs: t.TempDir()}
	proc, err := Start(d, Spec{Name: "sleeper", Path: "sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := Running(d, "sleeper")
	if !ok || pid != proc.PID {
		t.Fatalf("Running = %d, %v; want %d, true", pid, ok, proc.PID)
	}
	if err := Stop(context.Background(), d, "sleeper", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.Exited:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after Stop")
	}
	if _, ok := Running(d, "sleeper"); ok {
		t.Fatal("Running after Stop")
	}
	if _, err := os.Stat(d.PIDFile("sleeper")); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind: %v", err)
	}
}

// A PID file whose process has been replaced (same PID, other start time) must never be
// signalled: it names somebody else's process now.
func TestStopIgnoresReusedPID(t *testing.T) {
	d := Dirs{PIDs: t.TempDir(), Logs: t.TempDir()}
	self := os.Getpid()
	// Start time 1 tick after boot: not this process's.
	if err := os.WriteFile(d.PIDFile("impostor"), []byte(fmt.Sprintf("%d 1\n", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := Running(d, "impostor"); ok {
		t.Fatal("a reused PID counted as running")
	}
	if err := Stop(context.Background(), d, "impostor", time.Second); err != nil {
		t.Fatal(err)
	}
	// Still alive: we would not get here if Stop had signalled the test process.
}

func TestStopMissingAndMalformed(t *testing.T) {
	d := Dirs{PIDs: t.TempDir(), Logs: t.TempDir()}
	if err := Stop(context.Background(), d, "never-started", time.Second); err != nil {
		t.Fatalf("missing pid file: %v", err)
	}
	if err := os.WriteFile(d.PIDFile("garbage"), []byte("not a pid"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Stop(context.Background(), d, "garbage", time.Second); err != nil {
		t.Fatalf("malformed pid file: %v", err)
	}
}

func TestExitedReportsEarlyDeath(t *testing.T) {
	d := Dirs{PIDs: t.TempDir(), Logs: t.TempDir()}
	proc, err := Start(d, Spec{Name: "failing", Path: "sh", Args: []string{"-c", "echo boom; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.Exited:
	case <-time.After(5 * time.Second):
		t.Fatal("Exited not closed")
	}
	if proc.ExitErr() == nil {
		t.Fatal("want an exit error")
	}
	log, _ := os.ReadFile(proc.Log)
	if want := "boom"; !strings.Contains(string(log), want) {
		t.Fatalf("log %q lacks %q", log, want)
	}
}
