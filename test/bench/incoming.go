package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// serveArg makes this binary the local server that a stolen or mirrored port reaches.
const serveArg = "serve"

// serve answers every request on addr with "ok", as the echo app's /healthz does, so that the
// stolen and the direct figures compare servers doing the same work.
func serve(addr string) error {
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
}

// incomingHTTP measures an HTTP load on the pod's port 8080 from the node, 64 clients with
// keep-alive and with a new connection per request: (a) straight to the pod's app, (b) through
// plain kubectl port-forward to the app, (c) stolen to a local server over the direct UDP
// link, (d) the same over the port-forward link, and (e) mirrored, answered by the app while
// the local server gets a copy. (b) is the baseline of (d), which carries the same bytes
// through the API server; (a) of every other row, from the same run.
func (b *bench) incomingHTTP(ctx context.Context, pod *corev1.Pod) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	url := "http://" + pod.Status.PodIP + ":8080/healthz"
	load := func(url string, fresh bool) ([3]float64, error) {
		args := []string{loadgenArg, "-c", "64"}
		if fresh {
			args = append(args, "-new")
		}
		return runLoad(exec.CommandContext(ctx, self, append(args, url)...), nil)
	}
	for _, fresh := range []bool{false, true} {
		conns := "keep-alive"
		if fresh {
			conns = "new conns"
		}
		direct, err := load(url, fresh)
		if err != nil {
			return fmt.Errorf("direct load: %w", err)
		}
		fw, err := b.plainPortForward(ctx, pod.Name, 8080)
		if err != nil {
			return fmt.Errorf("plain port-forward: %w", err)
		}
		plain, err := load("http://"+fw.addr+"/healthz", fresh)
		fw.stop()
		if err != nil {
			return fmt.Errorf("load through plain port-forward: %w", err)
		}
		what := "node to the pod's app, " + conns
		plainWhat := "plain kubectl port-forward to the app, " + conns
		rows := func(name string, got, base [3]float64, baseline string) {
			row(name+" (req/s)", got[0], base[0], "req/s", baseline)
			row(name+" p50 (ms)", got[1], base[1], "ms", baseline)
			row(name+" p99 (ms)", got[2], base[2], "ms", baseline)
		}
		rows("HTTP plain port-forward, 64 "+conns, plain, direct, what)
		for _, c := range []struct {
			name     string
			flags    []string
			base     [3]float64
			baseline string
		}{
			{"stolen, direct UDP", []string{"--steal", "--transport", "direct"}, direct, what},
			{"stolen, port-forward", []string{"--steal", "--transport", "port-forward"}, plain, plainWhat},
			{"mirrored", nil, direct, what},
		} {
			var got [3]float64
			err := b.withIncoming(ctx, pod, c.flags, self, nil, func() error {
				var err error
				got, err = load(url, fresh)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s load: %w", c.name, err)
			}
			rows(fmt.Sprintf("HTTP %s, 64 %s", c.name, conns), got, c.base, c.baseline)
		}
	}
	return nil
}

// mirrorLatency measures what mirroring adds to the app's own answers, where it is not hidden
// by the queueing of a saturated machine: 64 clients sending 1,000 requests/s in all, well
// under what either path serves, and one client sending one request at a time. Each is measured
// twice: with the node's and the local side's processes on separate CPUs, as on a real cluster,
// and on shared CPUs, where the local copy's work also delays the app (see placement).
func (b *bench) mirrorLatency(ctx context.Context, pod *corev1.Pod) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	placements := []placement{{name: "shared CPUs"}}
	if split, ok := splitPlacement(); ok {
		placements = append([]placement{split}, placements...)
	}
	defer func() { _ = pinPod(pod.UID, nil) }()
	url := "http://" + pod.Status.PodIP + ":8080/healthz"
	for _, place := range placements {
		for _, fresh := range []bool{false, true} {
			conns := "keep-alive"
			if fresh {
				conns = "new conns"
			}
			for _, shape := range []struct {
				name string
				args []string
			}{
				{"64 clients at 1,000 req/s", []string{"-c", "64", "-rate", "1000"}},
				{"1 client", []string{"-c", "1"}},
			} {
				args := append([]string{loadgenArg}, shape.args...)
				if fresh {
					args = append(args, "-new")
				}
				measure := func() ([3]float64, error) {
					// Again each time: the sidecar is new in the pod.
					if err := pinPod(pod.UID, place.node); err != nil {
						return [3]float64{}, err
					}
					return runLoad(exec.CommandContext(ctx, self, append(args, url)...), place.node)
				}
				direct, err := measure()
				if err != nil {
					return fmt.Errorf("direct load: %w", err)
				}
				var mirrored [3]float64
				err = b.withIncoming(ctx, pod, nil, self, place.local, func() error {
					mirrored, err = measure()
					return err
				})
				if err != nil {
					return fmt.Errorf("mirrored load: %w", err)
				}
				what := "node to the pod's app, " + shape.name + ", " + conns + ", " + place.name
				row("HTTP mirrored, "+shape.name+", "+conns+" p50 (ms)", mirrored[1], direct[1], "ms", what)
				row("HTTP mirrored, "+shape.name+", "+conns+" p99 (ms)", mirrored[2], direct[2], "ms", what)
			}
		}
	}
	return nil
}

// withIncoming runs the local server under `exec` with flags, on the CPUs of cpus (any if nil),
// calls measure once the plugin says the pod's port is stolen or mirrored, and ends the session
// with SIGINT.
func (b *bench) withIncoming(ctx context.Context, pod *corev1.Pod, flags []string, self string, cpus *unix.CPUSet, measure func() error) error {
	return b.withSession(ctx, pod, self, incomingSession{home: "cold-0", listen: ":8080", flags: flags, cpus: cpus}, measure)
}

// incomingSession is one user's session that takes the pod's port.
type incomingSession struct {
	home   string       // the configuration home under the work directory: whose key
	listen string       // the local server's address
	flags  []string     // exec's flags
	cpus   *unix.CPUSet // where the plugin and the server run; any if nil
}

// withSession runs the session's local server under `exec`, calls measure once the plugin
// says the pod's port is stolen or mirrored, and ends the session with SIGINT.
func (b *bench) withSession(ctx context.Context, pod *corev1.Pod, self string, sess incomingSession, measure func() error) error {
	args := append([]string{"-n", namespace, "exec", "pod/" + pod.Name, "--sidecar-image", b.image}, sess.flags...)
	cmd := exec.CommandContext(ctx, b.plugin, append(args, "--", self, serveArg, sess.listen)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(b.work, sess.home))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := startOn(cmd, sess.cpus); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	ready := make(chan struct{})
	var said strings.Builder // read only after the timeout, when the reader has stopped writing
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			line := lines.Text()
			if strings.Contains(line, "stealing the pod's port") || strings.Contains(line, "stealing the pod's HTTP requests") || strings.Contains(line, "mirroring the pod's port") {
				close(ready)
				break
			}
			said.WriteString(line + "\n")
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("the pod's port was not taken within a minute:\n%s", said.String())
	}
	return measure()
}

// teamHTTP measures a port that two users steal by filter, each with a sidecar of their own,
// against one user's filtered steal, in the same run: 64 clients over the direct link, every
// request marked for a user (half for each of the two, all for the one), so that every request
// is answered by a local server in both. The second user's connections are handed from the
// sidecar that routes the port to the second user's.
//
// Each is measured twice, as mirrorLatency does: on shared CPUs, where both users' plugins and
// local servers compete with the pod's sidecars for the same two cores (and the pod's
// BestEffort cgroup weighs less than each of them), and with the node's side (the pod, the
// load) and the local side (the plugins, the local servers) on separate CPUs, as on a real
// cluster, where the users' programs run on their own machines.
func (b *bench) teamHTTP(ctx context.Context, pod *corev1.Pod) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	placements := []placement{{name: "shared CPUs"}}
	if split, ok := splitPlacement(); ok {
		placements = append(placements, split)
	}
	defer func() { _ = pinPod(pod.UID, nil) }()
	url := "http://" + pod.Status.PodIP + ":8080/healthz"
	for _, place := range placements {
		alice := incomingSession{home: "cold-0", listen: ":8080", cpus: place.local, flags: []string{"--steal", "--transport", "direct", "--http-header", "X-Dev: ^alice$"}}
		bob := incomingSession{home: "team-bob", listen: ":8081", cpus: place.local, flags: []string{"--steal", "--transport", "direct", "-p", "8081:8080", "--http-header", "X-Dev: ^bob$"}}
		for _, fresh := range []bool{false, true} {
			conns := "keep-alive"
			if fresh {
				conns = "new conns"
			}
			load := func(devs ...string) ([3]float64, error) {
				// Again each time: the sidecars are new in the pod.
				if err := pinPod(pod.UID, place.node); err != nil {
					return [3]float64{}, err
				}
				args := []string{loadgenArg, "-c", "64"}
				if fresh {
					args = append(args, "-new")
				}
				for _, dev := range devs {
					args = append(args, "-header", "X-Dev: "+dev)
				}
				return runLoad(exec.CommandContext(ctx, self, append(args, url)...), place.node)
			}
			var one, two [3]float64
			err := b.withSession(ctx, pod, self, alice, func() error {
				if one, err = load("alice"); err != nil {
					return err
				}
				return b.withSession(ctx, pod, self, bob, func() error {
					two, err = load("alice", "bob")
					return err
				})
			})
			if err != nil {
				return fmt.Errorf("filtered steal load: %w", err)
			}
			what := "one user's filtered steal, " + conns + ", " + place.name
			row("HTTP two users' filters, 64 "+conns+", "+place.name+" (req/s)", two[0], one[0], "req/s", what)
			row("HTTP two users' filters, 64 "+conns+", "+place.name+" p50 (ms)", two[1], one[1], "ms", what)
		}
	}
	return nil
}
