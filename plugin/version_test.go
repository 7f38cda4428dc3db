package plugin

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/remocal/kubectl-remocal/pkg/version"
)

func TestVersionOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    VersionOptions
		wantErr string
	}{
		{name: "defaults", opts: VersionOptions{}},
		{name: "json", opts: VersionOptions{Output: "json"}},
		{name: "yaml client only", opts: VersionOptions{Output: "yaml", ClientOnly: true}},
		{name: "unknown output", opts: VersionOptions{Output: "wide"}, wantErr: `--output must be 'json' or 'yaml', not "wide"`},
		{name: "output is case sensitive", opts: VersionOptions{Output: "JSON"}, wantErr: `--output must be 'json' or 'yaml', not "JSON"`},
		{name: "extra argument", opts: VersionOptions{args: []string{"now"}}, wantErr: `unexpected arguments: ["now"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

var serverVersion = apimachineryversion.Info{
	Major:      "1",
	Minor:      "34",
	GitVersion: "v1.34.4",
	Platform:   "linux/amd64",
}

// fakeAPIServer serves /version as an API server does and counts the requests it gets.
func fakeAPIServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var requests atomic.Int32
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/version" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if err := json.NewEncoder(w).Encode(serverVersion); err != nil {
				t.Errorf("encode /version: %v", err)
			}
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

// writeKubeconfig writes a kubeconfig whose current context points at server, so tests do not
// depend on the machine's ~/.kube/config or $KUBECONFIG.
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	config := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ` + server + `
users:
- name: test
  user: {}
contexts:
- name: test
  context:
    cluster: test
    user: test
current-context: test
`
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersionOutput(t *testing.T) {
	srv, _ := fakeAPIServer(t, nil)
	kubeconfig := writeKubeconfig(t, srv.URL)
	client := version.Get()

	t.Run("text", func(t *testing.T) {
		stdout, _, err := execute(t, "--kubeconfig", kubeconfig, "version")
		if err != nil {
			t.Fatalf("version = %v", err)
		}
		want := "Client Version: " + client.Version + "\nServer Version: v1.34.4\n"
		if stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
	})

	decoders := map[string]func([]byte, any) error{
		"json": json.Unmarshal,
		"yaml": func(b []byte, v any) error { return yaml.Unmarshal(b, v) },
	}
	for format, decode := range decoders {
		t.Run(format, func(t *testing.T) {
			stdout, _, err := execute(t, "--kubeconfig", kubeconfig, "version", "-o", format)
			if err != nil {
				t.Fatalf("version -o %s = %v", format, err)
			}
			var got struct {
				ClientVersion version.Info              `json:"clientVersion"`
				ServerVersion *apimachineryversion.Info `json:"serverVersion"`
			}
			if err := decode([]byte(stdout), &got); err != nil {
				t.Fatalf("decode %s output %q: %v", format, stdout, err)
			}
			if got.ClientVersion != client {
				t.Errorf("clientVersion = %+v, want %+v", got.ClientVersion, client)
			}
			if got.ServerVersion == nil || *got.ServerVersion != serverVersion {
				t.Errorf("serverVersion = %+v, want %+v", got.ServerVersion, serverVersion)
			}
		})
	}
}

func TestVersionClientOnly(t *testing.T) {
	srv, requests := fakeAPIServer(t, nil)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "does not contact the cluster",
			args: []string{"--kubeconfig", writeKubeconfig(t, srv.URL), "version", "--client"},
			want: "Client Version: " + version.Get().Version + "\n",
		},
		{
			name: "needs no kubeconfig",
			args: []string{"--kubeconfig", filepath.Join(t.TempDir(), "missing"), "--context", "missing", "version", "--client"},
			want: "Client Version: " + version.Get().Version + "\n",
		},
		{
			name: "json has no server version",
			args: []string{"--kubeconfig", writeKubeconfig(t, srv.URL), "version", "--client", "-o", "json"},
			want: "{\n  \"clientVersion\": " + indentedJSON(t, version.Get()) + "\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := execute(t, tt.args...)
			if err != nil {
				t.Fatalf("execute(%q) = %v", tt.args, err)
			}
			if stdout != tt.want {
				t.Errorf("stdout = %q, want %q", stdout, tt.want)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("--client sent %d requests to the cluster, want 0", n)
	}
}

func indentedJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// closedAddress returns a loopback URL where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestVersionServerErrors(t *testing.T) {
	forbidden, _ := fakeAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/version\"","reason":"Forbidden","code":403}`))
	})
	unauthorized, _ := fakeAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
	unreachable := closedAddress(t)

	tests := []struct {
		name       string
		server     string
		wantPrefix string
	}{
		{
			name:       "unreachable",
			server:     unreachable,
			wantPrefix: "unable to reach the cluster at " + unreachable + ": dial tcp ",
		},
		{
			name:       "refused by the cluster",
			server:     forbidden.URL,
			wantPrefix: "the cluster at " + forbidden.URL + " refused the version request: HTTP 403 Forbidden ",
		},
		{
			name:       "refused with a text message",
			server:     unauthorized.URL,
			wantPrefix: "the cluster at " + unauthorized.URL + " refused the version request: the server has asked for the client to provide credentials ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := execute(t, "--kubeconfig", writeKubeconfig(t, tt.server), "version")
			if err == nil {
				t.Fatal("version = nil, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantPrefix) || !strings.HasSuffix(msg, clientOnlyHint) || strings.Contains(msg, "\n") {
				t.Errorf("error = %q, want one line starting with %q and ending with %q", msg, tt.wantPrefix, clientOnlyHint)
			}
			var se *serverError
			if !errors.As(err, &se) || errors.Unwrap(err) == nil {
				t.Errorf("error %q does not keep the client-go cause", msg)
			}
			// As kubectl version does: the client version is printed before the failure.
			if want := "Client Version: " + version.Get().Version + "\n"; stdout != want {
				t.Errorf("stdout = %q, want %q", stdout, want)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing (main prints the error)", stderr)
			}
		})
	}
}

func TestVersionTimeout(t *testing.T) {
	// A cluster that accepts the connection and never answers, like one behind a dead load balancer.
	stuck, _ := fakeAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	kubeconfig := writeKubeconfig(t, stuck.URL)

	t.Run("default timeout", func(t *testing.T) {
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		o := NewVersionOptions(streams)
		o.Timeout = 200 * time.Millisecond
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig = &kubeconfig
		if err := o.Complete(flags, nil, nil); err != nil {
			t.Fatalf("Complete() = %v", err)
		}
		start := time.Now()
		err := o.Run(t.Context())
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("Run took %s with a 200ms timeout", elapsed)
		}
		want := "unable to reach the cluster at " + stuck.URL + ": no answer within 200ms " + clientOnlyHint
		if err == nil || err.Error() != want {
			t.Errorf("Run() = %v, want %q", err, want)
		}
	})

	t.Run("--request-timeout wins", func(t *testing.T) {
		_, _, err := execute(t, "--kubeconfig", kubeconfig, "--request-timeout", "300ms", "version")
		want := "unable to reach the cluster at " + stuck.URL + ": no answer within 300ms " + clientOnlyHint
		if err == nil || err.Error() != want {
			t.Errorf("version = %v, want %q", err, want)
		}
	})
}

func TestDefaultVersionTimeoutIsShort(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	if got := NewVersionOptions(streams).Timeout; got <= 0 || got > 10*time.Second {
		t.Errorf("default timeout = %s, want a few seconds", got)
	}
}
