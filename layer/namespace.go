//go:build linux

package layer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Served files reach the program as bind mounts in a mount namespace of its own, inside a user
// namespace that maps only the user's own ids. That costs nothing per syscall, where trapping
// every open would cost a round trip to the supervisor on each: more than doubling the time of
// a file-heavy program on the machines we measured. Where user namespaces are unavailable
// (disabled, or without capabilities as on Ubuntu's AppArmor restriction), the helper traps
// opens instead and the supervisor serves the same files.

// Environment between the supervisor and the helper; removed before the user's command runs.
const (
	// planEnv holds the mount plan (mountPlan, JSON).
	planEnv = "REMOCAL_LAYER_MOUNTS"
	// nsEnv is "want" when the helper should get into namespaces, "in" once it is.
	nsEnv = "REMOCAL_LAYER_NS"
)

// namespaceAttr puts a child into a new user and mount namespace as the namespace's root,
// mapped to the user: an unprivileged user's process gets the capabilities to mount there only
// as uid 0 (with its own uid, exec drops them). The program does not run as that root: the
// helper drops back to the user in a nested namespace (userAttr) before it execs.
func namespaceAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
}

// userAttr puts a child, started by the root of namespaceAttr's namespace, into a nested user
// namespace as the user again (uid and gid as the machine knows them), in the same mount
// namespace: the program sees its own ids, and other users' files as the overflow id.
func userAttr(uid, gid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: uid, HostID: 0, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: gid, HostID: 0, Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
}

// userNamespaces reports whether this machine lets us create the namespaces, by starting a
// trivial child (self, the plugin's executable) in them. The error wraps ErrNoUserNamespaces.
func userNamespaces(self string) error {
	cmd := exec.Command(self, HelperArg, "--probe")
	cmd.SysProcAttr = namespaceAttr()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoUserNamespaces, err)
	}
	return nil
}

// reexec runs this helper again, with the same arguments, as attr says, with extra
// environment and descriptors (numbered from 3), and ends as that child ends. It is how the
// helper gets into namespaces: a Go program cannot unshare a user namespace itself, having
// threads.
func reexec(args []string, attr *syscall.SysProcAttr, env []string, files []*os.File) (int, error) {
	cmd := exec.Command("/proc/self/exe", append([]string{HelperArg}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = attr
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	for _, f := range files {
		f.Close() // the child's now; ours would keep a FUSE mount's device open after it
	}
	go func() {
		for s := range sigs {
			if s != syscall.SIGCHLD && s != syscall.SIGURG {
				_ = cmd.Process.Signal(s)
			}
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			// End the same way, so that our parent (go run) sees what the program did.
			signal.Reset(ws.Signal())
			_ = syscall.Kill(os.Getpid(), ws.Signal())
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
