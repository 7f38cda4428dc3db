package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two sessions share the pod's port, one by a method filter and one by an all-of filter (with
// an any-of inside): over one HTTP/1.1 keep-alive connection and one h2c connection alike,
// each request goes to the session whose filter it matches, and the others to the pod's app.
func TestStealHTTPMethodAndAllOfFilter(t *testing.T) {
	s := newLayerSetup(t)
	base := "http://" + s.echo.podIP + ":8080"
	// do sends one request on its own connection, for the sessions' readiness.
	do := func(method, path, dev string) string {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			return err.Error()
		}
		if dev != "" {
			req.Header.Set("X-Dev", dev)
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
	methods := startIncoming(t, s, ":9090", func(*incomingSession) bool { return strings.HasPrefix(do("PUT", "/ready", ""), "local /ready") },
		"--steal", "-p", "9090:8080", "--http-method", "put,DELETE")
	defer methods.stop(syscall.SIGINT)
	allOf := startIncoming(t, s, ":9091", func(*incomingSession) bool {
		return strings.HasPrefix(do("GET", "/api/ready", "alice"), "local /api/ready")
	},
		"--steal", "-p", "9091:8080",
		"--http-filter", `{all-of: [{method: GET}, {path: ^/api/}, {any-of: [{header: "X-Dev: ^alice$"}, {query: dev=^alice$}]}]}`)
	defer allOf.stop(syscall.SIGINT)

	requests := []struct {
		method, path, dev string
		to                *incomingSession // nil for the pod's app
	}{
		{"PUT", "/m-1", "", methods},
		{"DELETE", "/api/m-2", "alice", methods}, // the method session's filter comes first
		{"GET", "/api/a-1", "alice", allOf},
		{"GET", "/api/a-2?dev=al%69ce", "", allOf},
		{"GET", "/api/x-1", "bob", nil},      // all-of: the any-of fails
		{"GET", "/web/x-2", "alice", nil},    // all-of: the path fails
		{"POST", "/api/x-3", "alice", nil},   // all-of: the method fails, and no PUT or DELETE
		{"GET", "/api/x-4?dev=bob", "", nil}, // all-of: the query fails
		{"PATCH", "/api/x-5", "alice", nil},  // a method neither filter names
		{"GET", "/api/a-3", "alice", allOf},  // again, on the same connection
		{"DELETE", "/m-3?dev=alice", "", methods},
	}
	// took waits for the request a session's local server saw, skipping probes and the
	// readiness checks.
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
	for name, protocols := range map[string]func(*http.Protocols){
		"HTTP/1.1": func(p *http.Protocols) { p.SetHTTP1(true) },
		"h2c":      func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) },
	} {
		t.Run(name, func(t *testing.T) {
			transport := &http.Transport{MaxConnsPerHost: 1, Protocols: new(http.Protocols)}
			protocols(transport.Protocols)
			defer transport.CloseIdleConnections()
			client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
			for _, r := range requests {
				// A path of its own per protocol, so that a request is told from the other's.
				path, _, _ := strings.Cut(r.path, "?")
				path += "-" + strings.ToLower(strings.TrimPrefix(name, "HTTP/"))
				target := path
				if _, query, ok := strings.Cut(r.path, "?"); ok {
					target += "?" + query
				}
				req, err := http.NewRequest(r.method, base+target, nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.dev != "" {
					req.Header.Set("X-Dev", r.dev)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", r.method, target, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				what := fmt.Sprintf("%s %s (X-Dev %q) over HTTP/%d", r.method, target, r.dev, resp.ProtoMajor)
				if want := map[string]int{"HTTP/1.1": 1, "h2c": 2}[name]; resp.ProtoMajor != want {
					t.Errorf("%s: want HTTP/%d", what, want)
				}
				switch {
				case r.to == nil:
					if !strings.Contains(string(body), `"hostname": "`+s.echo.pod+`"`) {
						t.Errorf("%s answered %q, want the pod's app", what, body)
					}
				default:
					who := map[*incomingSession]string{methods: "the method filter's", allOf: "the all-of filter's"}[r.to]
					if !strings.HasPrefix(string(body), "local "+path) || !took(r.to, r.method+" "+path) {
						t.Errorf("%s answered %q, want %s local server", what, body, who)
					}
				}
			}
		})
	}
}

// A filter that does not parse is one line and a non-zero exit, before anything is attached
// to the pod.
func TestStealHTTPFilterInvalid(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)
	before := env.ephemeralContainers(t, echo.pod)
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--http-method", "GET POST"}, `--http-method: method filter "GET POST": invalid method "GET POST"`},
		{[]string{"--http-filter", "{any-of: [{path: ^/a}, {query: dev}]}"}, `any-of[1]: query filter "dev": want "name=regex"`},
	} {
		r := p.run(t, append(append([]string{"exec", "deployment/echo", "--steal"}, tt.flags...), "--", "true")...)
		stderr := strings.TrimSpace(r.stderr)
		if r.code == 0 || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "\n") {
			t.Errorf("%v: exit %d, stderr %q; want one line with %q", tt.flags, r.code, stderr, tt.want)
		}
		if r.took > 10*time.Second {
			t.Errorf("%v: refused after %s", tt.flags, r.took)
		}
	}
	if after := env.ephemeralContainers(t, echo.pod); after != before {
		t.Errorf("ephemeral containers: %d before, %d after: an invalid filter attached a sidecar", before, after)
	}
}
