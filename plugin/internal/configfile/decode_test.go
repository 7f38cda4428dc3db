package configfile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestDecodeConfigFullFile(t *testing.T) {
	const file = `# every kind of key
target: deployment/web
namespace: shop
context: kind-dev
container: app
sidecar-image: registry.example/remocal-sidecar:v1
start-timeout: 90s
ttl: 1h30m
transport: port-forward
steal: true
no-incoming: false
no-follow: false
http-header: "X-Dev: alice"
http-path: ^/api/
http-method: GET,HEAD
http-query: [dev=alice, "debug="]
http-filter:
  any-of:
    - header: "X-Dev: alice"
    - method: [get, post]
      query: dev=alice
port-map: ["8080:80"]
ports: [8080, "9090,9091"]
ignore-ports: [9229]
local: [10.0.0.0/8, db.local:5432]
no-outgoing: false
env-include: ["APP_*"]
env-exclude: ["*_SECRET"]
env:
  LOG_LEVEL: debug
  PORT: 8080
  DEBUG: true
  HEX: 0x1F
  EMPTY: ""
env-file: .env.remote
fs-mode: write
fs-remote: [/data/*]
fs-local: [/etc/app/local.yaml]
fs-not-found: [~/.kube]
fs-max-file-size: 4Mi
port-forward:
  local: ["8080:orders.shop.svc.cluster.local:80"]
  remote: ["8080:3000"]
max-lifetime: 24h
user-label: alice@laptop
`
	got, err := Decode("f.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Target: "deployment/web", Namespace: "shop", Context: "kind-dev", Container: "app",
		SidecarImage: "registry.example/remocal-sidecar:v1", StartTimeout: 90 * time.Second, TTL: 90 * time.Minute, MaxLifetime: 24 * time.Hour,
		Transport: "port-forward", Steal: true, HTTPHeader: "X-Dev: alice", HTTPPath: "^/api/",
		HTTPMethod: "GET,HEAD", HTTPQuery: []string{"dev=alice", "debug="},
		HTTPFilter: &wire.HTTPFilter{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{
			{Op: wire.FilterHeader, Arg: "X-Dev: alice"},
			{Op: wire.FilterAllOf, Sub: []wire.HTTPFilter{{Op: wire.FilterMethod, Arg: "get,post"}, {Op: wire.FilterQuery, Arg: "dev=alice"}}},
		}},
		PortMap: []string{"8080:80"}, Ports: []string{"8080", "9090,9091"}, IgnorePorts: []string{"9229"},
		Local: []string{"10.0.0.0/8", "db.local:5432"}, EnvInclude: []string{"APP_*"}, EnvExclude: []string{"*_SECRET"},
		// Values as written: what -e would have been given.
		Env:     map[string]string{"LOG_LEVEL": "debug", "PORT": "8080", "DEBUG": "true", "HEX": "0x1F", "EMPTY": ""},
		EnvFile: ".env.remote", FSMode: "write", FSRemote: []string{"/data/*"}, FSLocal: []string{"/etc/app/local.yaml"},
		FSNotFound: []string{"~/.kube"}, FSMaxFileSize: "4Mi",
		PortForward: &PortForward{Local: []string{"8080:orders.shop.svc.cluster.local:80"}, Remote: []string{"8080:3000"}},
		UserLabel:   "alice@laptop",
	}
	lines := got.lines
	got.lines = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if lines["target"] != 2 || lines["steal"] != 10 || lines["port-forward.remote"] != 43 {
		t.Errorf("lines = %v", lines)
	}
	// Every key of the file, sections included, was recorded: the file covers them all.
	var paths []string
	for _, k := range fileKeys {
		paths = append(paths, k.Name)
		for _, s := range k.Section {
			paths = append(paths, k.Name+"."+s.Name)
		}
	}
	for _, p := range paths {
		if _, ok := lines[p]; !ok {
			t.Errorf("the test file does not set %s", p)
		}
	}
}

func TestDecodeConfigEmptyAndAliases(t *testing.T) {
	for _, file := range []string{"", "# only a comment\n", "---\n"} {
		cfg, err := Decode("f.yaml", []byte(file))
		if err != nil || len(cfg.lines) != 0 {
			t.Errorf("decode(%q) = %+v, %v; want nothing set", file, cfg, err)
		}
	}
	cfg, err := Decode("f.yaml", []byte("env-include: &globs [\"APP_*\"]\nfs-remote: *globs\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.FSRemote, []string{"APP_*"}) {
		t.Errorf("fs-remote through an alias = %q", cfg.FSRemote)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		line int
		want []string
	}{
		{
			name: "unknown key",
			file: "target: deployment/web\nnamespace: shop\n\n# steal the port\nstael: true\n",
			line: 5,
			want: []string{`f.yaml:5: unknown key "stael" (did you mean "steal"?); valid keys: container, context, env, `, ", steal, target, transport, ttl"},
		},
		{
			name: "unknown key, nothing like it",
			file: "zzzzzzzz: 1\n",
			line: 1,
			want: []string{`f.yaml:1: unknown key "zzzzzzzz"; valid keys: container,`},
		},
		{
			name: "unknown key in a section",
			file: "port-forward:\n  local: []\n  lcoal: [x]\n",
			line: 3,
			want: []string{`f.yaml:3: unknown key "lcoal" in port-forward (did you mean "local"?); valid keys: local, remote`},
		},
		{
			name: "a flag of exec in the port-forward section",
			file: "port-forward:\n  steal: true\n",
			line: 2,
			want: []string{`unknown key "steal" in port-forward; valid keys: local, remote`},
		},
		{name: "bool as a word", file: "target: pod/x\nsteal: yes\n", line: 2, want: []string{`f.yaml:2: steal: want true or false, not "yes"`}},
		{name: "bool as a string", file: "no-outgoing: \"true\"\n", line: 1, want: []string{`no-outgoing: want true or false, not "true"`}},
		{name: "duration without a unit", file: "\nttl: 10\n", line: 2, want: []string{"f.yaml:2: ttl: want a duration such as 90s or 10m, not 10"}},
		{name: "duration that does not parse", file: "start-timeout: soon\n", line: 1, want: []string{`start-timeout: want a duration such as 90s or 10m, not "soon"`}},
		{name: "enum", file: "transport: quic\n", line: 1, want: []string{`transport: want one of auto, direct, port-forward, not "quic"`}},
		{name: "enum of fs-mode", file: "fs-mode: rw\n", line: 1, want: []string{`fs-mode: want one of read, write, local, not "rw"`}},
		{name: "number for a string", file: "namespace: 123\n", line: 1, want: []string{`namespace: want a string, not 123 (quote it: "123")`}},
		{name: "null", file: "container:\n", line: 1, want: []string{"container: want a string, not nothing"}},
		{name: "scalar for a list", file: "ports: 8080\n", line: 1, want: []string{"ports: want a list such as [8080, 9090], not 8080"}},
		{name: "mapping in a list", file: "local:\n  - 10.0.0.0/8\n  - {a: b}\n", line: 3, want: []string{"f.yaml:3: local: want a list of strings, not a mapping"}},
		{name: "number in a list of strings", file: "fs-remote: [/a, 1]\n", line: 1, want: []string{`fs-remote: want a list of strings, not 1`}},
		{name: "list for a mapping", file: "env: [A=1]\n", line: 1, want: []string{"env: want a mapping of NAME: value, not a list"}},
		{name: "variable without a value", file: "env:\n  A: 1\n  B:\n", line: 3, want: []string{`f.yaml:3: env.B: want a string, a number or true/false ("" for an empty value), not nothing`}},
		{name: "list for a section", file: "port-forward: [a]\n", line: 1, want: []string{"port-forward: want a mapping of keys such as local: ..., not a list"}},
		{name: "not a mapping", file: "- steal\n", line: 1, want: []string{"f.yaml:1: the file: want a mapping of keys"}},
		{name: "key set twice", file: "steal: true\nttl: 1m\nsteal: false\n", line: 3, want: []string{"f.yaml:3: steal is set twice (first at line 1)"}},
		{name: "variable name with =", file: "env:\n  A=B: 1\n", line: 2, want: []string{`f.yaml:2: env: "A=B" is not a variable name`}},
		{name: "variable set twice", file: "env:\n  A: 1\n  A: 2\n", line: 3, want: []string{"env.A is set twice"}},
		{name: "filter not a mapping", file: "steal: true\nhttp-filter: GET\n", line: 2, want: []string{`f.yaml:2: http-filter: want a mapping of header, path, method, query, all-of, any-of, not "GET"`}},
		{name: "filter unknown key", file: "http-filter:\n  any-of:\n    - methd: GET\n", line: 3, want: []string{`f.yaml:3: http-filter.any-of[0]: unknown key "methd" (did you mean "method"?); valid keys: header, path, method, query, all-of, any-of`}},
		{name: "filter empty list", file: "http-filter:\n  all-of: []\n", line: 2, want: []string{"f.yaml:2: http-filter.all-of: want a list of filters such as [{method: GET}, {path: ^/api/}], not an empty list"}},
		{name: "filter leaf not a string", file: "http-filter:\n  all-of:\n    - path: ^/a\n    - query: {a: b}\n", line: 4, want: []string{"f.yaml:4: http-filter.all-of[1].query: want a string, not a mapping"}},
		{name: "filter empty mapping", file: "http-filter: {}\n", line: 1, want: []string{"http-filter: want a mapping of header"}},
		{name: "filter empty method list", file: "http-filter: {method: []}\n", line: 1, want: []string{"http-filter.method: want a method or a list of methods, not an empty list"}},
		{name: "filter too deep", file: "http-filter: " + strings.Repeat("{any-of: [", 8) + "{path: x}" + strings.Repeat("]}", 8) + "\n", line: 1, want: []string{"filters nested deeper than 8"}},
		{name: "second document", file: "steal: true\n---\nttl: 1m\n", line: 2, want: []string{"a second YAML document"}},
		// The line where the unclosed construct begins.
		{name: "not YAML, parser", file: "target: pod/x\nenv: {A: 1\n", line: 2, want: []string{"f.yaml:2: not valid YAML: did not find expected ',' or '}'"}},
		// A list begun on line 1 (which yaml.v3 numbers 0, "no line"): the line of the problem.
		{name: "not YAML, parser, list on line 1", file: "- a\nb: 1\n", line: 2, want: []string{"f.yaml:2: not valid YAML: did not find expected '-' indicator"}},
		{name: "not YAML, scanner", file: "target: pod/x\nsteal: true: false\n", line: 2, want: []string{"f.yaml:2: not valid YAML: mapping values are not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("f.yaml", []byte(tt.file))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("decode = %v, want a Error", err)
			}
			if ce.Line != tt.line {
				t.Errorf("line %d, want %d (%v)", ce.Line, tt.line, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"stael", "steal", 1}, {"steal", "steal", 0}, {"", "ttl", 3}, {"fs-mod", "fs-mode", 1}, {"namespcae", "namespace", 1}, {"abc", "xyz", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
