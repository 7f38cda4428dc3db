package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
)

// incomingSession is `exec deployment/echo` of a local HTTP server (layerclient serve) that
// takes or mirrors the echo pod's port 8080.
type incomingSession struct {
	*background
	requests chan string // "METHOD PATH" of each request the local server got
	closed   chan struct{}
}

// background is the plugin running while a test works against it.
type background struct {
	stderr *syncbuf.Buffer
	pid    int // the plugin's
	// stop signals the plugin, waits for it and logs its stderr; later calls do nothing.
	stop func(sig syscall.Signal)
}

// startBackground starts cmd, a plugin command, collecting its stderr; the test's cleanup
// kills it if the test has not stopped it.
func startBackground(t *testing.T, cmd *exec.Cmd) *background {
	t.Helper()
	bg := &background{stderr: &syncbuf.Buffer{}}
	cmd.Stderr = bg.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bg.pid = cmd.Process.Pid
	stopped := false
	bg.stop = func(sig syscall.Signal) {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
		t.Logf("plugin stderr:\n%s", bg.stderr.String())
	}
	t.Cleanup(func() { bg.stop(syscall.SIGKILL) })
	return bg
}

// waitUntil polls cond until it holds, or fails the test with what did not happen.
func (bg *background) waitUntil(t *testing.T, within time.Duration, cond func() bool, failure func() string) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s\n%s", failure(), bg.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startIncoming starts the session with flags and the local server on listen, and waits until
// ready says the pod's port is subscribed.
func startIncoming(t *testing.T, s *layerSetup, listen string, ready func(*incomingSession) bool, flags ...string) *incomingSession {
	t.Helper()
	args := append(append([]string{"exec", "deployment/echo"}, flags...), "--", s.layerclient, "serve", listen)
	cmd := s.plugin.command(t.Context(), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sess := &incomingSession{background: startBackground(t, cmd), requests: make(chan string, 100), closed: make(chan struct{})}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("the local server did not start: %v\n%s", lines.Err(), sess.stderr.String())
	}
	go func() {
		for lines.Scan() {
			switch line := lines.Text(); {
			case line == "closed":
				close(sess.closed)
			case strings.HasPrefix(line, "request "):
				select {
				case sess.requests <- strings.TrimPrefix(line, "request "):
				default: // a test that does not look at requests
				}
			}
		}
	}()
	sess.waitUntil(t, 20*time.Second, func() bool { return ready(sess) }, func() string { return "the pod's port was never subscribed" })
	return sess
}

// got waits for the local server to receive want. A mirror copies every connection to the
// port, the kubelet's readiness probes (GET /healthz every second) among them: other requests
// are skipped.
func (sess *incomingSession) got(t *testing.T, want string, within time.Duration) bool {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case got := <-sess.requests:
			if got == want {
				return true
			}
			if got != "GET /healthz" {
				t.Errorf("the local server got %q while waiting for %q", got, want)
			}
		case <-deadline:
			return false
		}
	}
}

// startSteal steals the echo pod's port 8080 for a local server and waits until the pod's port
// answers locally.
func startSteal(t *testing.T, s *layerSetup, flags ...string) *incomingSession {
	t.Helper()
	listen := ":8080"
	if len(flags) > 0 {
		listen = ":9090" // with -p 9090:8080
	}
	url := "http://" + s.echo.podIP + ":8080/ready"
	return startIncoming(t, s, listen, func(*incomingSession) bool { return strings.HasPrefix(get(url), "local ") }, append([]string{"--steal"}, flags...)...)
}

// get returns the body of a GET on a new connection, or the error's text; header, if any, is
// one request header's name and value. A kept-alive connection would stay with whoever answered
// it first: connections made before a redirect keep going to the app.
func get(url string, header ...string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitApp waits until the pod's own app answers on its port again and says how long it took.
func waitApp(t *testing.T, s *layerSetup, within time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		if body := get("http://" + s.echo.podIP + ":8080/back"); strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
			return time.Since(begin)
		}
		if time.Since(begin) > within {
			t.Fatalf("the pod's app does not answer %s after the session", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStealHTTP(t *testing.T) {
	s := newLayerSetup(t)
	// Who this test is to the pod's app: the local server must see the same client.
	var app echoReply
	if err := json.Unmarshal([]byte(get("http://"+s.echo.podIP+":8080/who")), &app); err != nil {
		t.Fatal(err)
	}
	us, _, _ := net.SplitHostPort(app.RemoteAddr)
	sess := startSteal(t, s)
	for name, url := range map[string]string{
		"pod IP":    "http://" + s.echo.podIP + ":8080/pod-ip",
		"ClusterIP": "http://" + s.echo.clusterIP + "/cluster-ip",
	} {
		body := get(url)
		if !strings.HasPrefix(body, "local /") {
			t.Errorf("%s: answered %q, want the local server", name, body)
		}
		if name == "pod IP" && !strings.Contains(body, " from "+us+":") {
			t.Errorf("%s: the local server saw the request %q, want it from %s as the app does", name, body, us)
		}
	}
	t.Run("the Service's name from another pod", func(t *testing.T) {
		// The request leaves from the client pod: remocal's outgoing path makes it there.
		r := s.exec(t, s.layerclient, "get", "http://echo/by-name")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "local /by-name from ") {
			t.Fatalf("exit %d, answered %q, want the local server", r.code, r.stdout)
		}
	})
	t.Run("10,000 requests with checksummed bodies", func(t *testing.T) {
		sent, failures := checksummedPosts(t, "http://"+s.echo.podIP+":8080/post", 10_000, 16)
		t.Logf("%d requests, %d lost or corrupted", sent, len(failures))
		if len(failures) > 0 {
			t.Fatalf("%d of %d requests lost or corrupted, the first: %v", len(failures), sent, failures[0])
		}
	})
	t.Run("no descriptor held per stolen connection", func(t *testing.T) {
		const conns = 300
		plugin, sidecar := []int{sess.pid}, sidecarPIDs(t, s.env, "echo", sess.stderr.String())
		pluginBefore, sidecarBefore := countFDs(t, plugin), countFDs(t, sidecar)
		for i := range conns {
			if body := get("http://" + s.echo.podIP + ":8080/fd"); !strings.HasPrefix(body, "local /fd") {
				t.Fatalf("connection %d: answered %q, want the local server", i, body)
			}
		}
		for _, p := range []struct {
			name   string
			pids   []int
			before int
		}{{"plugin", plugin, pluginBefore}, {"sidecar", sidecar, sidecarBefore}} {
			after := countFDs(t, p.pids)
			for deadline := time.Now().Add(10 * time.Second); after > p.before+4 && time.Now().Before(deadline); after = countFDs(t, p.pids) {
				time.Sleep(100 * time.Millisecond)
			}
			if after > p.before+4 {
				t.Errorf("the %s held %d descriptors before %d stolen connections and %d after", p.name, p.before, conns, after)
			}
		}
	})
	sess.stop(syscall.SIGINT)
	t.Logf("the app answered again %s after the session ended", waitApp(t, s, 5*time.Second))

	t.Run("a local port mapped to the pod's", func(t *testing.T) {
		sess := startSteal(t, s, "-p", "9090:8080")
		sess.stop(syscall.SIGINT)
		waitApp(t, s, 5*time.Second)
	})
	t.Run("the program closes its listener", func(t *testing.T) {
		sess := startSteal(t, s)
		if body := get("http://" + s.echo.podIP + ":8080/close-listener"); !strings.HasPrefix(body, "closing") {
			t.Fatalf("answered %q, want the local server closing", body)
		}
		<-sess.closed
		// The plugin looks for closed listeners every second; the session goes on.
		t.Logf("the app answered again %s after the program closed its listener", waitApp(t, s, 3*time.Second))
		// The plugin says so once the sidecar has answered the unsubscribe, which can be a
		// moment after the app answers.
		sess.waitUntil(t, 2*time.Second, func() bool { return strings.Contains(sess.stderr.String(), "the program closed") },
			func() string { return "the plugin did not say the port went back to the app" })
		sess.stop(syscall.SIGINT)
	})
	t.Run("a second session stealing the same port", func(t *testing.T) {
		first := startSteal(t, s)
		defer first.stop(syscall.SIGINT)
		// Its own local server listens on another port of this machine, mapped to the same pod port.
		second := s.plugin.run(t, "exec", "deployment/echo", "--steal", "-p", "9091:8080", "--", "sh", "-c", s.layerclient+" serve :9091 & sleep 3; kill $!")
		if !strings.Contains(second.stderr, "cannot steal the pod's port 8080") || !strings.Contains(second.stderr, "another session") {
			t.Errorf("the second session was not refused clearly:\n%s", second.stderr)
		}
	})
	t.Run("SIGKILL of the plugin", func(t *testing.T) {
		sess := startSteal(t, s)
		sess.stop(syscall.SIGKILL)
		// The sidecar ends the subscription when QUIC's idle timeout (7 s) says the client is gone.
		t.Logf("the app answered again %s after SIGKILL of the plugin", waitApp(t, s, 10*time.Second))
		assertNoRedirects(t, s)
	})
	t.Run("the plugin loses its network", func(t *testing.T) {
		sess := startSteal(t, s)
		// Nothing the plugin sends reaches the pod any more; the sidecar hears nothing and
		// ends the session at QUIC's idle timeout, its rules with it.
		restore := dropUDPTo(t, netip.MustParseAddr(s.echo.podIP))
		t.Logf("the app answered again %s after the plugin's network went", waitApp(t, s, 10*time.Second))
		restore()
		sess.stop(syscall.SIGKILL)
		assertNoRedirects(t, s)
	})
	t.Run("SIGKILL of the sidecar's worker", func(t *testing.T) {
		startSteal(t, s)
		worker := s.env.sidecarWorker(t, s.echo.pod)
		if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The guard process deletes the worker's redirect table as soon as the worker is gone.
		t.Logf("the app answered again %s after SIGKILL of the sidecar's worker", waitApp(t, s, 2*time.Second))
		assertNoRedirects(t, s)
	})
	t.Run("clean after the whole sidecar was killed", func(t *testing.T) {
		sess := startSteal(t, s)
		// Guard first, so that nothing is left to delete the table: what a node's OOM killer
		// or a runtime crash could do.
		worker := s.env.sidecarWorker(t, s.echo.pod)
		guard := parentOf(t, worker)
		for _, pid := range []int{guard, worker} {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				t.Fatal(err)
			}
		}
		sess.stop(syscall.SIGKILL)
		if body := get("http://" + s.echo.podIP + ":8080/left"); strings.Contains(body, `"hostname"`) {
			t.Fatalf("the app answers with its sidecar killed whole: nothing was left to clean (%q)", body)
		}
		r := s.plugin.run(t, "clean", "pod/"+s.echo.pod)
		if r.code != 0 || !regexp.MustCompile(`remocal_\d+\s+8080\s+gone\s+removed`).MatchString(r.stdout) {
			t.Fatalf("clean: exit %d, want the dead sidecar's table removed:\n%s", r.code, r.stdout)
		}
		t.Logf("the app answered again %s after clean", waitApp(t, s, 2*time.Second))
		assertNoRedirects(t, s)
	})
}

// assertNoRedirects checks, with the sidecar's own listing, that the pod has no redirect left.
func assertNoRedirects(t *testing.T, s *layerSetup) {
	t.Helper()
	r := s.plugin.run(t, "clean", "pod/"+s.echo.pod, "--list")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "No port redirects in the pod." {
		t.Fatalf("clean --list: exit %d, want no redirect left:\n%s", r.code, r.stdout)
	}
}

// parentOf returns the parent process of pid.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces, so count from its closing parenthesis.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

// checksummedPosts sends n POSTs of random bodies over conns kept-alive connections and
// returns what failed: a lost request, or an answer that is not the body it sent.
func checksummedPosts(t *testing.T, url string, n, conns int) (int, []error) {
	t.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	var next atomic.Int64
	var mu sync.Mutex
	var failures []error
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			body := make([]byte, 8<<10)
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				size := 1 + int(i*7919)%len(body)
				rand.Read(body[:size])
				if err := postAndCompare(client, url, body[:size]); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Errorf("request %d: %w", i, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return n, failures
}

func postAndCompare(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if sha256.Sum256(got) != sha256.Sum256(body) {
		return fmt.Errorf("answer of %d bytes is not the %d bytes sent", len(got), len(body))
	}
	return nil
}

func TestMirrorHTTP(t *testing.T) {
	s := newLayerSetup(t)
	mirroring := func(sess *incomingSession) bool {
		return strings.Contains(sess.stderr.String(), "mirroring the pod's port 8080")
	}
	sess := startIncoming(t, s, ":8080", mirroring)
	for i := range 10 {
		path := fmt.Sprintf("/mirror-%d", i)
		body := get("http://" + s.echo.clusterIP + path)
		var reply echoReply
		if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.Hostname != s.echo.pod || reply.Path != path {
			t.Fatalf("%s: answered %q, want the pod's app", path, body)
		}
		if !sess.got(t, "GET "+path, 10*time.Second) {
			t.Fatalf("the local server never got a copy of %s", path)
		}
	}
	// The sidecar copies the port's packets: no redirect stands between the clients and the app.
	assertNoRedirects(t, s)
	t.Run("the pod's answers are the app's, byte for byte", func(t *testing.T) {
		// The echo app's answer is a function of the request and of the client's address, which
		// a mirror leaves alone; only the client's port differs, as it does between any two
		// connections.
		url := "http://" + s.echo.clusterIP + "/same"
		with := get(url)
		sess.stop(syscall.SIGINT)
		waitApp(t, s, 5*time.Second)
		without := get(url)
		var seen echoReply
		_ = json.Unmarshal([]byte(with), &seen)
		t.Logf("under mirror the app saw the request from %s (the pod is %s)", seen.RemoteAddr, s.echo.podIP)
		if withoutPort(with) != withoutPort(without) {
			t.Errorf("answer under mirror:\n%s\nwithout the session:\n%s", with, without)
		}
	})
}

// withoutPort blanks the port of the echo answer's client address.
func withoutPort(body string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return body
	}
	if addr, ok := m["remoteAddr"].(string); ok {
		m["remoteAddr"], _, _ = net.SplitHostPort(addr)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// sidecarWorker finds, on this machine, the worker process of the pod's newest sidecar: the
// local cluster runs containers as host processes.
func (e *env) sidecarWorker(t *testing.T, pod string) int {
	t.Helper()
	p, err := e.client.CoreV1().Pods(e.namespace).Get(e.ctx(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	var newest time.Time
	for _, s := range p.Status.EphemeralContainerStatuses {
		if strings.HasPrefix(s.Name, "remocal-") && s.State.Running != nil && !s.State.Running.StartedAt.Time.Before(newest) {
			id, newest = s.ContainerID, s.State.Running.StartedAt.Time
		}
	}
	_, id, _ = strings.Cut(id, "://")
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if id != "" && strings.Contains(string(cg), id) && strings.Contains(string(cmdline), "--worker") {
			return pid
		}
	}
	t.Skip("the sidecar's worker is not a process on this machine (not the local cluster)")
	return 0
}

func TestStealHTTPFilter(t *testing.T) {
	s := newLayerSetup(t)
	url := "http://" + s.echo.podIP + ":8080/"
	sess := startIncoming(t, s, ":8080", func(*incomingSession) bool {
		return strings.Contains(get(url), `"hostname": "`+s.echo.pod+`"`) && strings.Contains(get(url, "X-Dev", "alice"), "local /")
	}, "--steal", "--http-header", "X-Dev: ^alice$")
	defer sess.stop(syscall.SIGINT)

	for name, protocols := range map[string]func(*http.Protocols){
		"HTTP/1.1 keep-alive": func(p *http.Protocols) { p.SetHTTP1(true) },
		"h2c":                 func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) },
	} {
		t.Run(name, func(t *testing.T) {
			// One connection for every request: MaxConnsPerHost 1, and each request after the
			// first must say it reused it.
			transport := &http.Transport{MaxConnsPerHost: 1, Protocols: new(http.Protocols)}
			protocols(transport.Protocols)
			defer transport.CloseIdleConnections()
			client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
			for i := range 6 {
				path := fmt.Sprintf("/filtered-%d", i)
				req, err := http.NewRequest(http.MethodGet, url[:len(url)-1]+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				alice := i%2 == 0
				if alice {
					req.Header.Set("X-Dev", "alice")
				} else if i == 3 {
					req.Header.Set("X-Dev", "bob") // a header that does not match
				}
				reused := false
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
				}))
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if i > 0 && !reused {
					t.Errorf("%s went on a new connection", path)
				}
				switch {
				case alice && !strings.HasPrefix(string(body), "local "+path):
					t.Errorf("%s with X-Dev: alice answered %q, want the local server", path, body)
				case !alice && !strings.Contains(string(body), `"hostname": "`+s.echo.pod+`"`):
					t.Errorf("%s without X-Dev: alice answered %q, want the pod's app", path, body)
				case resp.ProtoMajor == 2 && !alice && !strings.Contains(string(body), `"proto": "HTTP/2.0"`):
					t.Errorf("%s reached the app as %q, want HTTP/2", path, body)
				}
			}
		})
	}
}

// Two sessions share the pod's port with different filters: each gets its own requests on one
// keep-alive connection, the rest go to the app, a session without a filter is refused, and
// when one session ends its requests go to the app while the other's still come to it.
func TestStealHTTPFilterShared(t *testing.T) {
	s := newLayerSetup(t)
	url := "http://" + s.echo.podIP + ":8080/"
	isLocal := func(header, value string) func(*incomingSession) bool {
		return func(*incomingSession) bool { return strings.HasPrefix(get(url, header, value), "local /") }
	}
	alice := startIncoming(t, s, ":9090", isLocal("X-Dev", "alice"), "--steal", "-p", "9090:8080", "--http-header", "X-Dev: ^alice$")
	bob := startIncoming(t, s, ":9091", isLocal("X-Dev", "bob"), "--steal", "-p", "9091:8080", "--http-header", "X-Dev: ^bob$")
	defer bob.stop(syscall.SIGINT)

	transport := &http.Transport{MaxConnsPerHost: 1}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	send := func(path, dev string) string {
		req, err := http.NewRequest(http.MethodGet, url[:len(url)-1]+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if dev != "" {
			req.Header.Set("X-Dev", dev)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	// took waits for the request a session's local server saw.
	took := func(sess *incomingSession, want string) bool {
		for {
			select {
			case got := <-sess.requests:
				if got == want {
					return true
				}
			case <-time.After(5 * time.Second):
				return false
			}
		}
	}
	for i, dev := range []string{"alice", "bob", "", "alice", "carol", "bob"} {
		path := fmt.Sprintf("/shared-%d", i)
		body := send(path, dev)
		switch dev {
		case "alice", "bob":
			sess := map[string]*incomingSession{"alice": alice, "bob": bob}[dev]
			if !strings.HasPrefix(body, "local "+path) || !took(sess, "GET "+path) {
				t.Errorf("%s with X-Dev: %s answered %q, want %s's local server", path, dev, body, dev)
			}
		default:
			if !strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
				t.Errorf("%s with X-Dev %q answered %q, want the pod's app", path, dev, body)
			}
		}
	}

	whole := s.plugin.run(t, "exec", "deployment/echo", "--steal", "-p", "9092:8080", "--", "sh", "-c", s.layerclient+" serve :9092 & sleep 3; kill $!")
	if !strings.Contains(whole.stderr, "cannot steal the pod's port 8080") || !strings.Contains(whole.stderr, "another session") {
		t.Errorf("a session stealing the whole port was not refused clearly:\n%s", whole.stderr)
	}

	alice.stop(syscall.SIGINT)
	transport.CloseIdleConnections() // a connection open before keeps the routes it had
	alice.waitUntil(t, 5*time.Second, func() bool { return strings.Contains(get(url, "X-Dev", "alice"), `"hostname": "`+s.echo.pod+`"`) },
		func() string { return "alice's requests do not go to the app after her session ended" })
	if body := send("/after", "bob"); !strings.HasPrefix(body, "local /after") {
		t.Errorf("after alice's session, bob's request answered %q", body)
	}
}

// A gRPC call (h2c) is stolen by its metadata: with x-dev: alice it reaches the local server,
// without it the pod's, on one client connection. Each server reports SERVING only for its own
// name (testapp grpc -name), so an answer says who gave it.
func TestStealGRPCFilter(t *testing.T) {
	s := newLayerSetup(t)
	testapp := filepath.Join(t.TempDir(), "testapp")
	if b, err := exec.Command("go", "build", "-o", testapp, "../apps/testapp").CombinedOutput(); err != nil {
		t.Fatalf("build testapp: %v\n%s", err, b)
	}
	bg := startBackground(t, s.plugin.command(t.Context(), "exec", "deployment/echo", "--steal", "--http-header", "X-Dev: ^alice$", "--",
		testapp, "grpc", "-addr", ":9002", "-name", "local"))
	defer bg.stop(syscall.SIGINT)
	bg.waitUntil(t, 30*time.Second,
		func() bool {
			return strings.Contains(bg.stderr.String(), "stealing the pod's HTTP requests on port 9002")
		},
		func() string { return "the pod's port 9002 was never stolen" })
	conn, err := grpc.NewClient("passthrough:///"+net.JoinHostPort(s.echo.podIP, "9002"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	for i, call := range []struct {
		service string
		alice   bool
	}{{"local", true}, {"app", false}, {"local", true}, {"app", false}} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if call.alice {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-dev", "alice")
		}
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: call.service})
		cancel()
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("call %d (x-dev: alice %v) for %q: %v, %v; want SERVING from the %s server", i, call.alice, call.service, resp.GetStatus(), err, call.service)
		}
	}
}

// With --no-incoming a listening program leaves the pod's port to its app.
func TestNoIncoming(t *testing.T) {
	s := newLayerSetup(t)
	sess := startIncoming(t, s, ":8080", func(sess *incomingSession) bool {
		return strings.Contains(sess.stderr.String(), "] ready")
	}, "--no-incoming")
	defer sess.stop(syscall.SIGINT)
	// The listen event comes after ready: give a subscription, if one were made, time to act.
	time.Sleep(time.Second)
	if body := get("http://" + s.echo.podIP + ":8080/untouched"); !strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
		t.Fatalf("answered %q, want the pod's app", body)
	}
	if strings.Contains(sess.stderr.String(), "mirroring") || strings.Contains(sess.stderr.String(), "stealing") {
		t.Fatalf("a port was subscribed:\n%s", sess.stderr.String())
	}
	select {
	case got := <-sess.requests:
		t.Fatalf("the local server got %q", got)
	default:
	}
}

// port-forward -R brings the pod's port to a server already running here, with no program
// under remocal, and gives it back when it ends.
func TestPortForwardRemote(t *testing.T) {
	s := newLayerSetup(t)
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "local server: %s\n", r.URL.Path)
	}))
	defer local.Close()
	_, port, _ := net.SplitHostPort(local.Listener.Addr().String())
	bg := startBackground(t, s.plugin.command(t.Context(), "port-forward", "deployment/echo", "-R", "8080:"+port))
	defer bg.stop(syscall.SIGINT)
	url := "http://" + s.echo.podIP + ":8080/reverse"
	bg.waitUntil(t, 30*time.Second,
		func() bool { return strings.HasPrefix(get(url), "local server: /reverse") },
		func() string {
			return fmt.Sprintf("the pod's port never came to the local server (last answer %q)", get(url))
		})
	bg.stop(syscall.SIGINT)
	t.Logf("the app answered again %s after port-forward ended", waitApp(t, s, 5*time.Second))
}

// Under Pod Security baseline the sidecar may not redirect ports (no NET_ADMIN), but it keeps
// the runtime's default capabilities, NET_RAW among them where the runtime grants it (containerd
// does): a mirror, which only copies packets, works there.
func TestMirrorUnderBaseline(t *testing.T) {
	e := newEnv(t)
	e.labelNamespace(t, "pod-security.kubernetes.io/enforce", "baseline")
	s := &layerSetup{env: e, echo: e.deployEcho(t), plugin: e.plugin(t), layerclient: buildLayerClient(t)}
	sess := startIncoming(t, s, ":8080", func(sess *incomingSession) bool {
		return strings.Contains(sess.stderr.String(), "mirroring the pod's port 8080")
	})
	defer sess.stop(syscall.SIGINT)
	body := get("http://" + s.echo.podIP + ":8080/baseline")
	if !strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
		t.Fatalf("answered %q, want the pod's app", body)
	}
	if !sess.got(t, "GET /baseline", 10*time.Second) {
		t.Fatalf("no copy under baseline:\n%s", sess.stderr.String())
	}
	sess.stop(syscall.SIGINT)

	// A steal cannot work here: it is refused before its program runs, and the mirror's
	// sidecar, which cannot redirect, is not reused for it.
	before := e.ephemeralContainers(t, s.echo.pod)
	assertStealRefused(t, s.plugin, "baseline", "exec", "deployment/echo", "--steal", "--")
	if after := e.ephemeralContainers(t, s.echo.pod); after != before {
		t.Errorf("ephemeral containers grew from %d to %d for a refused steal", before, after)
	}
}

// Under Pod Security restricted the sidecar has no capability at all: a steal, whole or by
// HTTP filter, and port-forward -R (a steal without a program) are refused within 5 s, in one
// line naming the level, before a sidecar is added or the program runs. Before, a sidecar was
// added and the program ran, to be told only when it listened. What needs no redirect still
// works there.
func TestStealRefusedUnderRestricted(t *testing.T) {
	e := newEnv(t)
	e.labelNamespace(t, "pod-security.kubernetes.io/enforce", "restricted")
	// A target that restricted admits: the sidecar must then fit the level too.
	user, yes, no := int64(1000), true, false
	e.createDeploymentSpec(t, "strict", corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: &yes, RunAsUser: &user, RunAsGroup: &user,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            "app",
			Image:           testApp(),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"/testapp", "http", "-addr", ":8080"},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	})
	pod, err := e.waitReadyPod(e.ctx(t), "app=strict")
	if err != nil {
		t.Fatal(err)
	}
	p := e.plugin(t)
	assertStealRefused(t, p, "restricted", "exec", "deployment/strict", "--steal", "--")
	assertStealRefused(t, p, "restricted", "exec", "deployment/strict", "--steal", "--http-header", "X-Dev: alice", "--")
	r := p.run(t, "port-forward", "deployment/strict", "-R", "8080:3000")
	assertOneLineError(t, r, `-R needs the NET_ADMIN capability to redirect the pod's ports, which namespace `+e.namespace+`'s Pod Security level "restricted" forbids`)
	if r.took > 5*time.Second {
		t.Errorf("port-forward -R refused after %s, want within 5 s", r.took)
	}
	if n := e.ephemeralContainers(t, pod.Name); n != 0 {
		t.Errorf("%d ephemeral containers added for refused steals", n)
	}
	if r := p.run(t, "exec", "deployment/strict", "--", "true"); r.code != 0 {
		t.Errorf("exec without --steal under restricted: exit %d", r.code)
	}
}

// assertStealRefused runs the plugin with args, followed by a program that leaves a mark,
// and checks that it fails within 5 s with the one line naming level, the program not run.
func assertStealRefused(t *testing.T, p *plugin, level string, args ...string) {
	t.Helper()
	mark := filepath.Join(t.TempDir(), "ran")
	r := p.run(t, append(args, "touch", mark)...)
	assertOneLineError(t, r, `--steal needs the NET_ADMIN capability to redirect the pod's ports, which namespace `+p.namespace+`'s Pod Security level "`+level+`" forbids; run without --steal`)
	if r.took > 5*time.Second {
		t.Errorf("refused after %s, want within 5 s", r.took)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the program ran before the refusal")
	}
}
