//go:build linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// Supervisor answers the trapped syscalls of the programs started with its Command.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	dir     string
	control *net.UnixListener
	relay   *tcpRelay
	sockets *socketTable
	// arrivals are the pod's clients of the connections the plugin is making to the program.
	arrivals arrivals
	// dialings are the program's remote connects under way; parking holds the non-blocking
	// ones' sockets meanwhile, and failures keeps how those failed until the program reads it.
	dialings dialings
	parking  *parking
	failures failures

	// plan is the encoded mount plan for the helper (none when empty); userns tells whether
	// the helper can have the namespaces to carry it out. mounts are the served filesystems,
	// in the plan's order.
	plan   string
	userns bool
	mounts []Mount

	udpMu    sync.Mutex
	udpFlows map[flowKey]*udpFlow

	// programEnvs are the variables laid over each program's environment, by the number its
	// helper names in the handover (programEnvVar).
	programEnvMu sync.Mutex
	programEnvs  [][]string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New prepares a supervisor: its handover socket and its loopback relay. Close releases them.
func New(cfg Config) (*Supervisor, error) {
	if err := seccomp.Supported(); err != nil {
		return nil, err
	}
	if err := checkPtraceScope(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := checkShadowing(cfg); err != nil {
		return nil, err
	}
	removeStale(os.TempDir(), cfg.Log)
	dir, err := os.MkdirTemp("", dirPattern())
	if err != nil {
		return nil, err
	}
	control, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "supervisor.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("layer socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{cfg: cfg, log: cfg.Log, dir: dir, control: control, sockets: newSocketTable(), udpFlows: map[flowKey]*udpFlow{}, ctx: ctx, cancel: cancel}
	if s.relay, err = newTCPRelay(s.log); err != nil {
		s.Close()
		return nil, err
	}
	if s.parking, err = newParking(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.preparePlan(); err != nil {
		s.Close()
		return nil, err
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.acceptHelpers() }()
	go func() { defer s.wg.Done(); s.relay.serve(ctx) }()
	return s, nil
}

// checkPtraceScope fails early where the supervisor could not take descriptors from the
// program: Yama's ptrace_scope 2 (admin only) and 3 (none).
func checkPtraceScope() error {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if err != nil {
		return nil // no Yama
	}
	if scope := strings.TrimSpace(string(b)); scope == "2" || scope == "3" {
		return fmt.Errorf("kernel.yama.ptrace_scope is %s, which forbids pidfd_getfd on the program; set it to 1 (sudo sysctl kernel.yama.ptrace_scope=1)", scope)
	}
	return nil
}

// Command returns the command that runs argv under the layer. env is the command's
// environment; programEnv (KEY=VALUE) is laid over it for the program under the layer only. A
// `go run` or `go test` keeps the toolchain outside the layer: only the program it builds runs
// under it (-exec), so the toolchain runs with env alone, and the program with the environment
// the toolchain gives it (its working directory, GOCOVERDIR) and programEnv over that.
func (s *Supervisor) Command(argv, env, programEnv []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the plugin's executable: %w", err)
	}
	var cmd *exec.Cmd
	if goArgs, ok := goExecArgs(argv, self); ok {
		cmd = exec.Command(goArgs[0], goArgs[1:]...)
	} else {
		cmd = exec.Command(self, append([]string{HelperArg}, argv...)...)
	}
	s.programEnvMu.Lock()
	id := len(s.programEnvs)
	s.programEnvs = append(s.programEnvs, slices.Clone(programEnv))
	s.programEnvMu.Unlock()
	cmd.Env = append(slices.Clone(env), socketEnv+"="+s.control.Addr().String(), programEnvVar+"="+strconv.Itoa(id))
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if s.plan != "" {
		cmd.Env = append(cmd.Env, planEnv+"="+s.plan)
		switch {
		case s.userns && cmd.Args[1] == HelperArg:
			cmd.SysProcAttr = namespaceAttr()
			cmd.Env = append(cmd.Env, nsEnv+"=in")
		case s.userns:
			cmd.Env = append(cmd.Env, nsEnv+"=want") // go run: the -exec helper gets in
		}
	}
	// The program goes with the plugin: without the supervisor its trapped syscalls fail.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return cmd, nil
}

// goExecArgs rewrites `go run|test ...` to pass -exec with the helper, unless it has one.
func goExecArgs(argv []string, self string) ([]string, bool) {
	if len(argv) < 2 || filepath.Base(argv[0]) != "go" || (argv[1] != "run" && argv[1] != "test") {
		return nil, false
	}
	for _, a := range argv[2:] {
		if a == "-exec" || a == "--exec" || strings.HasPrefix(a, "-exec=") || strings.HasPrefix(a, "--exec=") {
			return nil, false
		}
	}
	if strings.ContainsAny(self, `'"`) {
		return nil, false
	}
	out := append([]string{argv[0], argv[1], "-exec", "'" + self + "' " + HelperArg}, argv[2:]...)
	return out, true
}

// Close stops the supervisor. Programs still running get ENOSYS from trapped syscalls.
func (s *Supervisor) Close() error {
	s.cancel()
	err := s.control.Close()
	if s.relay != nil {
		s.relay.close()
	}
	if s.parking != nil {
		s.parking.close()
	}
	s.wg.Wait()
	os.RemoveAll(s.dir)
	return err
}

// acceptHelpers takes over the listener of each helper that connects.
func (s *Supervisor) acceptHelpers() {
	for {
		conn, err := s.control.AcceptUnix()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			l, env, err := s.takeListener(conn)
			if err != nil {
				s.log.Error("layer helper refused", "err", err)
				_, _ = conn.Write([]byte(err.Error() + "\n"))
				return
			}
			if err := answerHelper(conn, env); err != nil {
				l.Close()
				return
			}
			s.serveListener(l)
		}()
	}
}

// takeListener reads the helper's handover line: the number of its program's environment, then
// of its listener, which it duplicates with pidfd_getfd, then of the FUSE devices, which it
// starts serving. It returns the listener and the program's environment.
func (s *Supervisor) takeListener(conn *net.UnixConn) (*seccomp.Listener, []string, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, nil, err
	}
	if credErr != nil {
		return nil, nil, fmt.Errorf("identify the helper: %w", credErr)
	}
	if int(cred.Uid) != os.Getuid() {
		return nil, nil, fmt.Errorf("helper of uid %d refused", cred.Uid)
	}
	line := make([]byte, 512)
	n, err := conn.Read(line)
	if err != nil {
		return nil, nil, fmt.Errorf("read the helper's listener: %w", err)
	}
	var numbers []int
	for _, field := range strings.Fields(string(line[:n])) {
		number, err := strconv.Atoi(field)
		if err != nil {
			return nil, nil, fmt.Errorf("malformed descriptor number %q", field)
		}
		numbers = append(numbers, number)
	}
	if len(numbers) != 2+len(s.mounts) {
		return nil, nil, fmt.Errorf("malformed handover %q", line[:n])
	}
	env, ok := s.programEnv(numbers[0])
	if !ok {
		return nil, nil, fmt.Errorf("unknown program environment %d", numbers[0])
	}
	numbers = numbers[1:]
	fds := make([]int, 0, len(numbers))
	for _, number := range numbers {
		fd, err := takeFD(int(cred.Pid), number)
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			if errors.Is(err, unix.EPERM) {
				return nil, nil, fmt.Errorf("pidfd_getfd: %w (this machine forbids taking descriptors from the program: a container's seccomp profile or Yama ptrace_scope; run outside such a container or allow ptrace)", err)
			}
			return nil, nil, fmt.Errorf("pidfd_getfd: %w (Linux 5.9 or newer is needed)", err)
		}
		fds = append(fds, fd)
	}
	for i, fd := range fds[1:] {
		// Not tracked in wg: a mount lives as long as the program's namespace, which may
		// outlast the supervisor's Close by the time the program takes to die.
		go s.mounts[i].Serve(s.ctx, os.NewFile(uintptr(fd), "fuse:"+s.mounts[i].Path))
	}
	return seccomp.NewListener(fds[0]), env, nil
}

func (s *Supervisor) programEnv(id int) ([]string, bool) {
	s.programEnvMu.Lock()
	defer s.programEnvMu.Unlock()
	if id < 0 || id >= len(s.programEnvs) {
		return nil, false
	}
	return s.programEnvs[id], true
}

// answerHelper accepts the helper's handover: "ok", then its program's environment, each
// variable ended by a NUL, up to the end of our direction. The environment travels here rather
// than in the helper's own, which `go run` hands to the whole toolchain.
func answerHelper(conn *net.UnixConn, env []string) error {
	var b strings.Builder
	b.WriteString("ok\n")
	for _, kv := range env {
		b.WriteString(kv)
		b.WriteByte(0)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return err
	}
	return conn.CloseWrite()
}

// serveListener receives notifications until every process under this filter has exited, or
// the supervisor closes.
func (s *Supervisor) serveListener(l *seccomp.Listener) {
	defer l.Close()
	_ = l.SyncWakeUp()
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		s.log.Error("eventfd", "err", err)
		return
	}
	defer unix.Close(stop)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-s.ctx.Done():
			_, _ = unix.Write(stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		case <-done:
		}
	}()
	fds := []unix.PollFd{{Fd: int32(l.FD()), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	var n seccomp.Notif
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			s.log.Error("poll seccomp listener", "err", err)
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			return // POLLHUP: no process is left under this filter
		}
		if err := l.Receive(&n); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINTR) {
				continue
			}
			s.log.Error("receive seccomp notification", "err", err)
			return
		}
		s.dispatch(l, n)
	}
}
