//go:build linux

package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the pause program and as a short-lived child
// of it, selected by this variable.
const helperEnv = "PAUSE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "pause":
		// Start a child that exits after the signal handler is installed
		// and would stay a zombie unless pause reaps it.
		child, err := os.StartProcess(os.Args[0], []string{os.Args[0]}, &os.ProcAttr{
			Env:   helperEnviron("child"),
			Files: []*os.File{nil, os.Stdout, os.Stderr},
		})
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(strconv.Itoa(child.Pid) + "\n")
		main()
	case "child":
		time.Sleep(300 * time.Millisecond)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPause(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = helperEnviron("pause")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read child pid: %v", err)
	}
	child := strings.TrimSpace(line)

	// The child is gone from /proc only once its parent, pause, reaped it;
	// an unreaped child stays as state Z.
	if !eventually(func() bool {
		_, err := os.Stat("/proc/" + child)
		return errors.Is(err, os.ErrNotExist)
	}) {
		stat, _ := os.ReadFile("/proc/" + child + "/stat")
		t.Errorf("child %s not reaped: %s", child, stat)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("pause after SIGTERM: %v, want exit status 0", err)
	}
}

// helperEnviron returns the environment with helperEnv set to mode. An
// inherited value must be dropped, not shadowed: Getenv returns the first of
// duplicate entries, and a child that believed it was pause would start
// another child without end.
func helperEnviron(mode string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, helperEnv+"=")
	})
	return append(env, helperEnv+"="+mode)
}

// eventually polls cond for up to 5s.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
