package testnet

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

// inNetnsEnv marks the test binary that runs one test in a network namespace of its own.
const inNetnsEnv = "REMOCAL_TEST_IN_NETNS"

// InOwnNetns runs the calling test again in a new network namespace, in a new process of the
// test binary: nftables tables and packet sockets are the whole process's, and a Go process
// cannot move all its threads to another namespace. It returns true in that process, where the
// test goes on, and false in the calling one, once the test ran there.
func InOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(inNetnsEnv) == "1" {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("bring the loopback interface up: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a network namespace of its own: %v\n%s", err, out)
	}
	t.Logf("in a network namespace of its own:\n%s", out)
	return false
}
