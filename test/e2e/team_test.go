package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Two users, each with a client key of their own and so a sidecar of their own in the pod,
// steal the pod's port 8080 by different filters: each local server gets exactly its requests,
// the unmarked ones reach the app, a whole-port steal is refused naming the session that holds
// the port, and the port stays shared when alice's session ends and when the sidecar that
// redirects it is killed outright.
func TestStealSharedAcrossUsers(t *testing.T) {
	s := newLayerSetup(t)
	url := "http://" + s.echo.podIP + ":8080"
	isLocal := func(dev string) func(*incomingSession) bool {
		return func(*incomingSession) bool { return strings.HasPrefix(get(url+"/ready", "X-Dev", dev), "local /") }
	}
	alice := startIncoming(t, s, ":9090", isLocal("alice"), "--steal", "-p", "9090:8080", "--http-header", "X-Dev: ^alice$", "--user-label", "alice@team")
	aliceSidecar, aliceID := s.env.newestSidecar(t, s.echo.pod)
	bobPlugin := s.env.plugin(t) // its own configuration home: its own client key and sidecar
	bobSetup := *s
	bobSetup.plugin = bobPlugin
	bob := startIncoming(t, &bobSetup, ":9091", isLocal("bob"), "--steal", "-p", "9091:8080", "--http-header", "X-Dev: ^bob$", "--user-label", "bob@team")
	defer bob.stop(syscall.SIGINT)
	if bobSidecar, _ := s.env.newestSidecar(t, s.echo.pod); bobSidecar == aliceSidecar {
		t.Fatalf("bob reused alice's sidecar %s", aliceSidecar)
	}
	sessions := map[string]*incomingSession{"alice": alice, "bob": bob}

	// Bob sees alice's session, on her sidecar's row, with her label and port.
	var found bool
	for _, sc := range bobPlugin.ls(t, "pod/"+s.echo.pod) {
		for _, ss := range sc.Sessions {
			if ss.Label == "alice@team" && ss.Sidecar == aliceSidecar && sc.Sidecar == aliceSidecar && len(ss.Subscriptions) == 1 && ss.Subscriptions[0].Port == 8080 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("bob's ls does not list alice's session on %s:\n%s", aliceSidecar, bobPlugin.run(t, "ls", "pod/"+s.echo.pod).stdout)
	}

	checkRouting(t, s, url, "both", 200, sessions)
	checkKeptConnection(t, s, url)

	whole := s.plugin.run(t, "exec", "deployment/echo", "--steal", "-p", "9092:8080", "--", "sh", "-c", s.layerclient+" serve :9092 & sleep 3; kill $!")
	if !strings.Contains(whole.stderr, "cannot steal the pod's port 8080") || !strings.Contains(whole.stderr, "another session, alice@team (sidecar "+aliceSidecar) {
		t.Errorf("a whole-port steal was not refused naming alice's session on %s:\n%s", aliceSidecar, whole.stderr)
	}

	alice.stop(syscall.SIGINT)
	delete(sessions, "alice")
	bob.waitUntil(t, 5*time.Second, func() bool {
		return strings.Contains(get(url+"/gone", "X-Dev", "alice"), `"hostname": "`+s.echo.pod+`"`)
	},
		func() string { return "alice's requests do not reach the app after her session ended" })
	checkRouting(t, s, url, "after alice's session", 60, sessions)

	// The sidecar that redirects the port, alice's, is killed with its guard: nothing of it
	// is left to give the port back, and bob's sidecar takes it over.
	pids := containerProcesses(t, aliceID)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	t.Logf("killed alice's sidecar %s, processes %v", aliceSidecar, pids)
	bobSidecar, _ := s.env.newestSidecar(t, s.echo.pod)
	// A client that connects while bob's sidecar takes the port over is refused: it connects
	// again, and is routed.
	failed := 0
	for {
		body, err := getOnce(url+"/takeover", "bob")
		if err == nil && strings.HasPrefix(body, "local /takeover") {
			break
		}
		failed++
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("bob's requests do not reach him 5 s after alice's sidecar was killed: %q, %v\nbob's sidecar's log:\n%s", body, err, s.env.containerLog(t, s.echo.pod, bobSidecar))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("bob's sidecar routes the port %s after the kill; %d requests failed before", time.Since(killed).Round(time.Millisecond), failed)
	if gap := time.Since(killed); gap > time.Second {
		t.Errorf("the port was routed again %s after the kill; want within one reconnect (1 s)", gap.Round(time.Millisecond))
	}
	checkRouting(t, s, url, "after alice's sidecar was killed", 60, sessions)
}

// checkKeptConnection sends requests for bob, alice, nobody and bob on one kept connection:
// alice's sidecar, which routes the port, hands the connection to bob's at his first request,
// and bob's sends the others back to it (sidecar/handover.go).
func checkKeptConnection(t *testing.T, s *layerSetup, url string) {
	t.Helper()
	transport := &http.Transport{MaxConnsPerHost: 1}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: transport}
	for i, dev := range []string{"bob", "alice", "", "bob", "bob"} {
		path := fmt.Sprintf("/kept-%d", i)
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if dev != "" {
			req.Header.Set("X-Dev", dev)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("kept connection: %s for %q: %v", path, dev, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("kept connection: %s for %q: %v", path, dev, err)
		}
		if i > 0 && !reused {
			t.Errorf("kept connection: %s went on a new connection", path)
		}
		switch {
		case dev != "" && !strings.HasPrefix(string(body), "local "+path):
			t.Errorf("kept connection: %s for %q answered %q, want %s's local server", path, dev, body, dev)
		case dev == "" && !strings.Contains(string(body), `"hostname": "`+s.echo.pod+`"`):
			t.Errorf("kept connection: %s, unmarked, answered %q, want the pod's app", path, body)
		}
	}
}

// containerLog is the log of one container of pod.
func (e *env) containerLog(t *testing.T, pod, container string) string {
	t.Helper()
	logs, err := e.client.CoreV1().Pods(e.namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(e.ctx(t))
	if err != nil {
		return err.Error()
	}
	return string(logs)
}

// checkRouting sends n requests, each on a new connection, marked in turn for alice, for bob
// and for nobody, and checks that each session's local server got exactly the requests marked
// for it, and the app all the others.
func checkRouting(t *testing.T, s *layerSetup, url, phase string, n int, sessions map[string]*incomingSession) {
	t.Helper()
	want := map[string]map[string]bool{}
	for i := range n {
		dev := []string{"alice", "bob", ""}[i%3]
		path := fmt.Sprintf("/%s-%d", strings.ReplaceAll(phase, " ", "-"), i)
		body, err := getOnce(url+path, dev)
		if err != nil {
			t.Fatalf("%s: %s for %q: %v", phase, path, dev, err)
		}
		if sess := sessions[dev]; sess != nil {
			if !strings.HasPrefix(body, "local "+path) {
				t.Errorf("%s: %s for %q answered %q, want %s's local server", phase, path, dev, body, dev)
			}
			if want[dev] == nil {
				want[dev] = map[string]bool{}
			}
			want[dev]["GET "+path] = true
		} else if !strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
			t.Errorf("%s: %s for %q answered %q, want the pod's app", phase, path, dev, body)
		}
	}
	for dev, sess := range sessions {
		got := map[string]bool{}
	drain:
		for {
			select {
			case req := <-sess.requests:
				if strings.HasPrefix(req, "GET /"+strings.ReplaceAll(phase, " ", "-")) {
					got[req] = true
				}
			case <-time.After(500 * time.Millisecond):
				break drain
			}
		}
		if len(got) != len(want[dev]) {
			t.Errorf("%s: %s's local server got %d requests, want exactly its %d", phase, dev, len(got), len(want[dev]))
		}
		for req := range got {
			if !want[dev][req] {
				t.Errorf("%s: %s's local server got %s, not marked for it", phase, dev, req)
			}
		}
	}
}

// getOnce is get on a new connection that reports a failure as an error.
func getOnce(url, dev string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if dev != "" {
		req.Header.Set("X-Dev", dev)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Two users mirror the pod's port, each from a sidecar of their own: the app answers every
// request, and each local server gets a copy of each.
func TestMirrorByTwoUsers(t *testing.T) {
	s := newLayerSetup(t)
	mirroring := func(sess *incomingSession) bool {
		return strings.Contains(sess.stderr.String(), "mirroring the pod's port 8080")
	}
	alice := startIncoming(t, s, ":9090", mirroring, "-p", "9090:8080")
	bobSetup := *s
	bobSetup.plugin = s.env.plugin(t) // another client key: another sidecar
	bob := startIncoming(t, &bobSetup, ":9091", mirroring, "-p", "9091:8080")
	for i := range 5 {
		path := fmt.Sprintf("/mirror-both-%d", i)
		if body := get("http://" + s.echo.podIP + ":8080" + path); !strings.Contains(body, `"hostname": "`+s.echo.pod+`"`) {
			t.Fatalf("%s: answered %q, want the pod's app", path, body)
		}
		for who, sess := range map[string]*incomingSession{"alice": alice, "bob": bob} {
			if !sess.got(t, "GET "+path, 10*time.Second) {
				t.Fatalf("%s's local server never got a copy of %s", who, path)
			}
		}
	}
	assertNoRedirects(t, s)
}
