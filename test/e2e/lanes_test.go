package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
)

// Issue 15's data lanes, end to end: each TCP connection the layer dials through the pod rides a
// lane of its own beside the QUIC link.

// TestLanesSurviveCutAPIServerConnections streams 256 MiB each way over one connection of a
// program under the layer, on the port-forward path, while every TCP connection of the plugin
// to the API server is cut from outside (ss -K) four times: the port-forward connection that
// carries the QUIC link and the lanes goes each time. The program's connection must not notice:
// identical bytes both ways, no error on it, and the plugin counts resumed lanes.
func TestLanesSurviveCutAPIServerConnections(t *testing.T) {
	needTool(t, "ss")
	s := newLayerSetup(t)
	const mib = 256
	cutAt := []int{48, 96, 144, 192} // MiB received by the program

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := s.plugin.command(ctx, "exec", "deployment/client", "--transport", "port-forward", "-v=1", "--",
		s.layerclient, "stream", "echo:9000", strconv.Itoa(mib))
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { t.Logf("plugin stderr:\n%s", stderr.String()) }()
	server := apiServer(t, s.env)

	var stdout []string
	cuts := 0
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		line := lines.Text()
		stdout = append(stdout, line)
		var got int
		if _, err := fmt.Sscanf(line, "received %d MiB", &got); err != nil || cuts == len(cutAt) || got < cutAt[cuts] {
			continue
		}
		ports := cutConnections(t, cmd.Process.Pid, server)
		cuts++
		t.Logf("cut %d at %d MiB received (%s): the plugin's connections to %s from ports %v", cuts, got, time.Since(begin).Round(time.Millisecond), server, ports)
	}
	err = cmd.Wait()
	took := time.Since(begin)
	report := strings.Join(stdout, "\n")
	if err != nil {
		t.Fatalf("the plugin: %v\nprogram's stdout:\n%s", err, report)
	}
	if cuts != len(cutAt) {
		t.Fatalf("cut %d times, want %d\nprogram's stdout:\n%s", cuts, len(cutAt), report)
	}
	sent, received := field(report, "sent sha256 "), field(report, "received sha256 ")
	if sent == "" || sent != received || !strings.Contains(report, "\nconnection never closed") {
		t.Fatalf("the program's connection did not carry the bytes unharmed:\n%s", report)
	}
	stats := laneStatistics(t, stderr.String())
	if stats["resumed"] < 1 {
		t.Fatalf("lane statistics %v: no lane resumed", stats)
	}
	t.Logf("%d MiB each way over one connection with %d cuts in %s; lane statistics %v", mib, cuts, took.Round(time.Millisecond), stats)
}

// TestLanesManyConnectionsNoDescriptorLeak opens 500 connections at once over lanes, and checks
// that the plugin and the sidecar hold no more descriptors once they ended than before, on
// both paths.
func TestLanesManyConnectionsNoDescriptorLeak(t *testing.T) {
	s := newLayerSetup(t)
	for _, transport := range []string{"port-forward", "direct"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := s.plugin.command(ctx, "exec", "deployment/client", "--transport", transport, "-v=1", "--",
				s.layerclient, "manyfds", "echo:9000", "500")
			stderr := &syncbuf.Buffer{}
			cmd.Stderr = stderr
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				in.Close()
				_ = cmd.Wait()
				t.Logf("plugin stderr:\n%s", stderr.String())
			}()
			lines := bufio.NewScanner(out)
			next := func() string {
				if !lines.Scan() {
					t.Fatalf("the program ended early; stderr:\n%s", stderr.String())
				}
				return lines.Text()
			}
			if line := next(); line != "ready" {
				t.Fatalf("program: %q", line)
			}
			sidecar := sidecarPIDs(t, s.env, "client", stderr.String())
			before := countFDs(t, sidecar)
			begin := time.Now()
			fmt.Fprintln(in)
			if line := next(); line != "all ok" {
				t.Fatalf("500 connections: %q", line)
			}
			took := time.Since(begin)
			var pluginBefore, pluginAfter int
			if _, err := fmt.Sscanf(next(), "plugin fds before %d after %d", &pluginBefore, &pluginAfter); err != nil {
				t.Fatal(err)
			}
			after := countFDs(t, sidecar)
			for deadline := time.Now().Add(10 * time.Second); after > before && time.Now().Before(deadline); after = countFDs(t, sidecar) {
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintln(in)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("the plugin: %v", err)
			}
			t.Logf("500 connections in %s; descriptors of the plugin %d before, %d after; of the sidecar (pids %v) %d before, %d after",
				took.Round(time.Millisecond), pluginBefore, pluginAfter, sidecar, before, after)
			if pluginAfter > pluginBefore+4 {
				t.Errorf("the plugin held %d descriptors before 500 connections and %d after", pluginBefore, pluginAfter)
			}
			if after > before+4 {
				t.Errorf("the sidecar held %d descriptors before 500 connections and %d after", before, after)
			}
			if stats := laneStatistics(t, stderr.String()); stats["opened"] < 500 {
				t.Errorf("lane statistics %v: want at least 500 lanes opened", stats)
			}
		})
	}
}

// TestLanesReuseConnections: a program that opens one connection after another, each for one
// request, has its lanes carried by the connections of the lanes before, on both paths,
// rather than a new port-forward stream pair or TLS handshake for each; and holds no more
// descriptors after than before.
func TestLanesReuseConnections(t *testing.T) {
	s := newLayerSetup(t)
	const conns = 200
	for _, transport := range []string{"port-forward", "direct"} {
		t.Run(transport, func(t *testing.T) {
			r := s.plugin.run(t, "exec", "deployment/client", "--transport", transport, "-v=1", "--",
				s.layerclient, "fds", "echo:9000", strconv.Itoa(conns))
			var before, after int
			if _, err := fmt.Sscanf(strings.TrimSpace(r.stdout), "fds before %d after %d", &before, &after); err != nil || r.code != 0 {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if after > before+4 {
				t.Errorf("the plugin held %d descriptors before %d connections and %d after", before, conns, after)
			}
			stats := laneStatistics(t, r.stderr)
			t.Logf("lane statistics after %d connections: %v", conns, stats)
			if stats["opened"] < conns {
				t.Errorf("lane statistics %v: want at least %d lanes opened", stats, conns)
			}
			if stats["onReusedConnections"] < conns/10 {
				t.Errorf("lane statistics %v: want at least %d of the %d lanes on reused connections", stats, conns/10, conns)
			}
			if stats["resumed"] != 0 || stats["refused"] != 0 {
				t.Errorf("lane statistics %v: want none resumed or refused", stats)
			}
		})
	}
}

// TestLanesVersionSkew runs a plugin with lanes against a sidecar without them, and the reverse:
// both must still carry traffic. The build without lanes is a real one: the last commit before
// them, built from the repository's history.
func TestLanesVersionSkew(t *testing.T) {
	s := newLayerSetup(t)
	old := buildOldRelease(t)
	newImage := currentSidecarImage(t, s.plugin)
	oldPlugin := *s.plugin
	oldPlugin.path = old.plugin

	// The echo pod and the client pod each get the sidecars of one direction: a sidecar is
	// reused only for its own image, so each run adds the one it names.
	cases := []struct {
		name   string
		plugin *plugin
		target string
		image  string
	}{
		{"plugin with lanes, sidecar without", s.plugin, "deployment/echo", old.image},
		{"plugin without lanes, sidecar with", &oldPlugin, "deployment/client", newImage},
	}
	const mib = 16
	for _, c := range cases {
		for _, transport := range []string{"port-forward", "direct"} {
			t.Run(c.name+", "+transport, func(t *testing.T) {
				r := c.plugin.run(t, "exec", c.target, "--transport", transport, "--sidecar-image", c.image, "-v=1", "--",
					s.layerclient, "stream", "echo:9000", strconv.Itoa(mib))
				sent, received := field(r.stdout, "sent sha256 "), field(r.stdout, "received sha256 ")
				if r.code != 0 || sent == "" || sent != received {
					t.Fatalf("exit %d, stdout:\n%s", r.code, r.stdout)
				}
				if !strings.Contains(r.stderr, " ("+c.image+"), waiting for it to run") {
					t.Errorf("the session did not add a sidecar of %s", c.image)
				}
				// Without lanes on one side, the session has none (a plugin with lanes asks an
				// old sidecar for none), and the bytes ride the QUIC link.
				if strings.Contains(r.stderr, `"lane`) {
					t.Error("the plugin logged about lanes: the session used them")
				}
				if link := linkBytesSent(r.stderr); link < mib<<20 {
					t.Errorf("the QUIC link carried %d bytes, not the %d MiB sent", link, mib)
				}
			})
		}
	}
}

// apiServer is the API server's HOST:PORT.
func apiServer(t *testing.T, e *env) string {
	t.Helper()
	u, err := url.Parse(e.config.Host)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":443"
	}
	return u.Host
}

// cutConnections destroys every established TCP connection of process pid to server (ss -K)
// and returns their local ports. It fails the test when there is none: the cut would test
// nothing.
func cutConnections(t *testing.T, pid int, server string) []string {
	t.Helper()
	host, port := server[:strings.LastIndex(server, ":")], server[strings.LastIndex(server, ":")+1:]
	filter := []string{"state", "established", "dst", host, "dport", "=", ":" + port}
	out, err := exec.Command("ss", append([]string{"-tnpH"}, filter...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	owner := fmt.Sprintf("pid=%d,", pid)
	var ports []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.Contains(line, owner) {
			continue
		}
		local := f[2]
		ports = append(ports, local[strings.LastIndex(local, ":")+1:])
	}
	if len(ports) == 0 {
		t.Fatalf("process %d has no connection to %s:\n%s", pid, server, out)
	}
	for _, p := range ports {
		if out, err := exec.Command("ss", append([]string{"-K"}, append(filter, "sport", "=", ":"+p)...)...).CombinedOutput(); err != nil {
			t.Fatalf("ss -K: %v: %s", err, out)
		}
	}
	return ports
}

// laneStatisticsLine is the plugin's log line at the end of a session with lanes.
var laneStatisticsLine = regexp.MustCompile(`"lane statistics".*`)

// laneStatistics reads the numbers of the plugin's "lane statistics" line.
func laneStatistics(t *testing.T, stderr string) map[string]int64 {
	t.Helper()
	line := laneStatisticsLine.FindString(stderr)
	if line == "" {
		t.Fatal("the plugin logged no lane statistics")
	}
	stats := map[string]int64{}
	for _, m := range regexp.MustCompile(`(\w+)=(\d+)`).FindAllStringSubmatch(line, -1) {
		stats[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	return stats
}

// linkBytesSent is what the plugin's "link statistics" line says the QUIC link sent.
func linkBytesSent(stderr string) int64 {
	m := regexp.MustCompile(`"link statistics".* bytesSent=(\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// field is the rest of the first line of text that begins with prefix.
func field(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sidecarPIDs finds on this machine, the cluster's node, the processes of the sidecar a plugin
// uses, by what it said on stderr, in the pod of Deployment name: the remocal-sidecar
// processes (it starts a child of its own) in the cgroup of its container.
func sidecarPIDs(t *testing.T, e *env, name, stderr string) []int {
	t.Helper()
	m := regexp.MustCompile(`(?:added|reusing) sidecar (\S+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the plugin named no sidecar:\n%s", stderr)
	}
	sidecar := m[1]
	pod, err := e.waitReadyPod(e.ctx(t), "app="+name)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, st := range pod.Status.EphemeralContainerStatuses {
		if st.Name == sidecar && st.State.Running != nil {
			_, id, _ = strings.Cut(st.ContainerID, "://")
		}
	}
	if id == "" {
		t.Fatalf("sidecar %s of pod %s is not running", sidecar, pod.Name)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !strings.HasSuffix(strings.SplitN(string(cmdline), "\x00", 2)[0], "remocal-sidecar") {
			continue
		}
		if cgroup, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cgroup")); err == nil && strings.Contains(string(cgroup), id) {
			found = append(found, pid)
		}
	}
	if len(found) == 0 {
		t.Fatalf("no process of sidecar %s (container %s) on this machine", sidecar, id)
	}
	t.Logf("sidecar %s: container %s, processes %v", sidecar, id, found)
	return found
}

// countFDs is the number of open descriptors of the processes pids together.
func countFDs(t *testing.T, pids []int) int {
	t.Helper()
	n := 0
	for _, pid := range pids {
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		n += len(entries)
	}
	return n
}

// oldRelease is a build of the last commit before lanes: its plugin, and its sidecar image
// imported into the local cluster.
type oldRelease struct {
	plugin string
	image  string
}

// oldCommit is the last commit before the data lanes (issue 15).
const oldCommit = "993aea5"

// buildOldRelease builds the plugin and the sidecar image of oldCommit from the repository's
// history, and imports the image into the local cluster as the Makefile's cluster-load does.
func buildOldRelease(t *testing.T) oldRelease {
	t.Helper()
	root := strings.TrimSpace(mustRun(t, "", "git", "rev-parse", "--show-toplevel"))
	if _, err := exec.Command("git", "-C", root, "cat-file", "-e", oldCommit+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("commit %s is not in this clone's history", oldCommit)
	}
	begin := time.Now()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", "sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", root, oldCommit, src))

	const pkg = "github.com/remocal/kubectl-remocal"
	version := "v0.0.0-e2e-" + oldCommit
	ldflags := fmt.Sprintf("-s -w -X %s/pkg/version.version=%s -X %s/pkg/version.commit=%s", pkg, version, pkg, oldCommit)
	rel := oldRelease{plugin: filepath.Join(dir, "kubectl-remocal"), image: "ghcr.io/remocal/remocal-sidecar:" + version}
	sidecar := filepath.Join(dir, "remocal-sidecar")
	tarball := filepath.Join(dir, "remocal-sidecar.tar")
	mustRun(t, src, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", rel.plugin, "./cmd/kubectl-remocal")
	mustRun(t, src, "env", "CGO_ENABLED=0", "GOOS=linux", "go", "build", "-trimpath", "-ldflags", ldflags, "-o", sidecar, "./cmd/remocal-sidecar")
	mustRun(t, src, "go", "run", "./internal/cmd/mkimage", "-ref", rel.image, "-entrypoint", "/remocal-sidecar",
		"-bin", "linux/"+runtime.GOARCH+"="+sidecar, "-tarball", tarball)
	loader := filepath.Join(root, "bin", "remocal-cluster")
	if _, err := os.Stat(loader); err == nil {
		mustRun(t, root, loader, "load", tarball)
	} else {
		mustRun(t, root, "go", "run", "./test/cluster", "load", tarball)
	}
	t.Logf("built and loaded the plugin and sidecar image of %s in %s", oldCommit, time.Since(begin).Round(time.Millisecond))
	return rel
}

// currentSidecarImage is the sidecar image the plugin under test adds by default.
func currentSidecarImage(t *testing.T, p *plugin) string {
	t.Helper()
	out := mustRun(t, "", p.path, "version", "--client")
	v, ok := strings.CutPrefix(strings.TrimSpace(out), "Client Version: ")
	if !ok || strings.ContainsAny(v, "+ /") {
		t.Fatalf("plugin version %q: not one that is its own image tag", out)
	}
	return "ghcr.io/remocal/remocal-sidecar:" + v
}

// mustRun runs a command in dir ("" is the test's) and returns its stdout, failing the test with
// its output when it fails.
func mustRun(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestStealSurvivesPortForwardBreaks: stolen connections ride lanes the plugin keeps waiting
// in the sidecar. When the port-forward under them drops, the plugin asks the sidecar about
// each waiting lane it lost, so that a connection announced on one that was already dead is
// announced again and answered, not held until the lane's resume timeout.
func TestStealSurvivesPortForwardBreaks(t *testing.T) {
	s := newLayerSetup(t)
	target := "http://" + s.echo.podIP + ":8080/breaks"
	sess := startIncoming(t, s, ":8080", func(*incomingSession) bool { return strings.HasPrefix(get(target), "local ") },
		"--steal", "--transport", "port-forward", "--debug-break-link-every", "1s", "-v=1")
	defer sess.stop(syscall.SIGINT)
	var failed atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(8 * time.Second)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				// Each on a new connection (get disables keep-alive), within 3 s.
				if body := get(target); !strings.HasPrefix(body, "local /breaks") {
					failed.Add(1)
					t.Logf("a request while the link broke: %q", body)
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	breaks := strings.Count(sess.stderr.String(), "breaking the port-forward connection")
	t.Logf("%d requests on new connections with %d breaks of the port-forward, %d failed", done.Load(), breaks, failed.Load())
	if breaks < 3 {
		t.Fatalf("the link broke %d times, want at least 3", breaks)
	}
	// Some connections still miss the 3 s across a break (a break a second is far more than a
	// real port-forward sees; the cause is not found yet): 1 to 12 in 959 to 1,909 in the
	// runs so far, up to 1.2%. Before the plugin asked about the waiting lanes a drop took,
	// 16 of 395 did (4%), with a break every 700 ms. One in 50 tells the two apart.
	if failed.Load()*50 > done.Load() {
		t.Fatalf("%d of %d requests failed or took over 3 s across the breaks", failed.Load(), done.Load())
	}
}
