package plugin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// signalRole makes the test binary play a part in TestPassSignalReachesTheChildOfGoRun.
const signalRole = "REMOCAL_TEST_SIGNAL_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(signalRole) {
	case "go-run":
		// As `go run` does: ignore SIGINT, run the program, pass on its exit code.
		signal.Ignore(syscall.SIGINT)
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), signalRole+"=program")
		child.Stdout = os.Stdout
		err := child.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		os.Exit(0)
	case "program":
		ints := make(chan os.Signal, 1)
		signal.Notify(ints, syscall.SIGINT)
		fmt.Println("ready")
		<-ints
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestPassSignalReachesTheChildOfGoRun(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), signalRole+"=go-run")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the program did not start: %q, %v", line, err)
	}
	passSignal(cmd.Process, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("exit %v, want 3 from the program's SIGINT handler", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT never reached the program under a parent that ignores it")
	}
}
