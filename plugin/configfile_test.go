package plugin

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// parsedExec returns exec's options after parsing args and applying the configuration file
// content file, as RunE does before Complete.
func parsedExec(t *testing.T, file string, args ...string) (*ExecOptions, *cobra.Command) {
	t.Helper()
	configFlags := genericclioptions.NewConfigFlags(true)
	o := NewExecOptions(configFlags, genericiooptions.NewTestIOStreamsDiscard())
	cmd := &cobra.Command{Use: "exec"}
	configFlags.AddFlags(cmd.PersistentFlags())
	o.AddFlags(cmd)
	configfile.AddFlag(cmd)
	applyParsed(t, cmd, file, args)
	return o, cmd
}

func applyParsed(t *testing.T, cmd *cobra.Command, file string, args []string) {
	t.Helper()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	cfg, err := configfile.Decode("f.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if err := configfile.Apply(cmd, "f.yaml", configfile.Plan(cfg, "f.yaml", cmd)); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFlagsOverrideTheFile(t *testing.T) {
	const file = `
namespace: from-file
container: from-file
ttl: 30m
env-include: ["APP_*"]
env:
  A: from-file
  B: from-file
fs-mode: write
ports: [8080, 9090]
`
	o, cmd := parsedExec(t, file, "-n", "from-cli", "-c", "from-cli", "--ttl", "5m", "-e", "A=from-cli", "--ports", "7070")
	if got := *o.configFlags.Namespace; got != "from-cli" {
		t.Errorf("namespace %q, want the command line's", got)
	}
	if o.Container != "from-cli" || o.TTL.String() != "5m0s" {
		t.Errorf("container %q, ttl %s: want the command line's", o.Container, o.TTL)
	}
	// A list on the command line replaces the file's, rather than adding to it.
	if !slices.Equal(o.EnvSet, []string{"A=from-cli"}) || !slices.Equal(o.Ports, []string{"7070"}) {
		t.Errorf("env %q, ports %q: want only the command line's", o.EnvSet, o.Ports)
	}
	if !slices.Equal(o.EnvInclude, []string{"APP_*"}) || o.FSMode != "write" {
		t.Errorf("env-include %q, fs-mode %q: want the file's", o.EnvInclude, o.FSMode)
	}
	// A key from the file is as explicit as its flag: remote files were asked for.
	if !cmd.Flags().Changed("fs-mode") {
		t.Error("fs-mode from the file does not count as given")
	}

	o, _ = parsedExec(t, file)
	if *o.configFlags.Namespace != "from-file" || o.Container != "from-file" || o.TTL.String() != "30m0s" {
		t.Errorf("namespace %q, container %q, ttl %s: want the file's", *o.configFlags.Namespace, o.Container, o.TTL)
	}
	if !slices.Equal(o.EnvSet, []string{"A=from-file", "B=from-file"}) || !slices.Equal(o.Ports, []string{"8080", "9090"}) {
		t.Errorf("env %q, ports %q: want the file's, in order", o.EnvSet, o.Ports)
	}
}

// The incoming mode chosen on the command line replaces the file's whole, so that it never
// contradicts what the file says.
func TestConfigIncomingModeOnTheCommandLine(t *testing.T) {
	const stealing = "steal: true\nhttp-header: 'X-Dev: alice'\nhttp-path: ^/api\n"
	tests := []struct {
		name, file        string
		args              []string
		steal, noIncoming bool
		header, path      string
		validateErr       string
	}{
		{name: "the file's", file: stealing, steal: true, header: "X-Dev: alice", path: "^/api"},
		{name: "--no-incoming", file: stealing, args: []string{"--no-incoming"}, noIncoming: true},
		{name: "--steal=false (mirror)", file: stealing, args: []string{"--steal=false"}},
		{name: "--steal keeps the file's filters", file: stealing, args: []string{"--steal"}, steal: true, header: "X-Dev: alice", path: "^/api"},
		{name: "another filter", file: stealing, args: []string{"--http-path", "^/v2"}, steal: true, header: "X-Dev: alice", path: "^/v2"},
		{name: "--steal over no-incoming", file: "no-incoming: true\n", args: []string{"--steal"}, steal: true},
		// What the user wrote in one place still has to agree with itself.
		{name: "a file that contradicts itself", file: "steal: true\nno-incoming: true\n", steal: true, noIncoming: true, validateErr: "contradict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := parsedExec(t, tt.file, tt.args...)
			if o.Steal != tt.steal || o.NoIncoming != tt.noIncoming || o.HTTPHeader != tt.header || o.HTTPPath != tt.path {
				t.Errorf("steal %v, no-incoming %v, header %q, path %q; want %v, %v, %q, %q",
					o.Steal, o.NoIncoming, o.HTTPHeader, o.HTTPPath, tt.steal, tt.noIncoming, tt.header, tt.path)
			}
			err := o.validateIncoming()
			if (err != nil || tt.validateErr != "") && (err == nil || !strings.Contains(err.Error(), tt.validateErr)) {
				t.Errorf("validateIncoming = %v, want %q", err, tt.validateErr)
			}
		})
	}
}

// The file's filter tree reaches --http-filter, and from there the subscription, as written.
func TestConfigHTTPFilter(t *testing.T) {
	const file = `steal: true
http-method: GET
http-query: [dev=alice]
http-filter:
  any-of:
    - header: "X-Dev: alice"
    - {path: ^/api/, method: [post]}
`
	o, _ := parsedExec(t, file)
	if err := o.validateIncoming(); err != nil {
		t.Fatal(err)
	}
	sub, err := o.subscription()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"all-of":[{"method":"GET"},{"query":"dev=alice"},{"any-of":[{"header":"X-Dev: alice"},{"all-of":[{"path":"^/api/"},{"method":"post"}]}]}]}`
	if sub.Filter == nil || httpfilter.Format(*sub.Filter) != want {
		t.Fatalf("subscription %+v, want the filter %s", sub, want)
	}
	// The command line replaces the file's filter; --steal=false drops it.
	o, _ = parsedExec(t, file, "--http-filter", "{path: ^/v2/}")
	if o.HTTPFilter != "{path: ^/v2/}" || o.HTTPMethod != "GET" {
		t.Errorf("--http-filter over the file's: filter %q, method %q", o.HTTPFilter, o.HTTPMethod)
	}
	o, _ = parsedExec(t, file, "--steal=false")
	if o.HTTPFilter != "" || o.HTTPMethod != "" || o.HTTPQuery != nil {
		t.Errorf("--steal=false kept the file's filters: %q, %q, %q", o.HTTPFilter, o.HTTPMethod, o.HTTPQuery)
	}
}

func TestConfigPortForwardSection(t *testing.T) {
	const file = "steal: true\nlocal: [10.0.0.0/8]\ncontainer: app\nport-forward:\n  local: [\"8080:svc:80\"]\n  remote: [\"9090:3000\"]\n"
	o, _ := parsedExec(t, file)
	if !slices.Equal(o.Local, []string{"10.0.0.0/8"}) || !o.Steal {
		t.Errorf("exec took local %q, steal %v: want the top-level keys, not the port-forward section", o.Local, o.Steal)
	}

	root := NewCmdRemocal(genericiooptions.NewTestIOStreamsDiscard())
	pf, _, err := root.Find([]string{"port-forward"})
	if err != nil {
		t.Fatal(err)
	}
	// The file's steal and local are exec's: port-forward leaves them, and takes its section.
	applyParsed(t, pf, file, nil)
	local, _ := pf.Flags().GetStringArray("local")
	remote, _ := pf.Flags().GetStringArray("remote")
	container, _ := pf.Flags().GetString("container")
	if !slices.Equal(local, []string{"8080:svc:80"}) || !slices.Equal(remote, []string{"9090:3000"}) || container != "app" {
		t.Errorf("port-forward took -L %q, -R %q, -c %q", local, remote, container)
	}
}

// commandBench prepares a command's run up to the cluster: a kubeconfig of an API server that
// does not answer, config homes and a working directory of the test's own, and exec stopped
// with reachedRun where it would start the program.
func commandBench(t *testing.T) (kubeconfig []string, dir string, reachedRun error) {
	t.Helper()
	reachedRun = errors.New("reached Run")
	saved := layerAvailable
	layerAvailable = func() error { return reachedRun }
	t.Cleanup(func() { layerAvailable = saved })
	t.Setenv("KUBECONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv(configfile.Env, "")
	kubeconfig = []string{"--kubeconfig", writeKubeconfig(t, "https://127.0.0.1:1")}
	dir = t.TempDir()
	t.Chdir(dir)
	return kubeconfig, dir, reachedRun
}

// The whole command: where the file comes from, and that its errors and its target reach the
// user through the command's own error path.
func TestConfigFileThroughTheCommand(t *testing.T) {
	kubeconfig, dir, reachedRun := commandBench(t)
	write := func(name, content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	run := func(args ...string) (string, error) {
		_, stderr, err := execute(t, append(kubeconfig, args...)...)
		return stderr, err
	}
	wantErr := func(err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}

	write(".remocal.yaml", "target: pod/web\n\nstael: true\n")
	_, err := run("exec", "--", "env")
	wantErr(err, `.remocal.yaml:3: unknown key "stael" (did you mean "steal"?); valid keys: `)

	t.Setenv(configfile.Env, write("env.yaml", "ttl: 10\n"))
	_, err = run("exec", "--", "env")
	wantErr(err, "env.yaml:1: ttl: want a duration")

	_, err = run("exec", "--config", write("flag.yaml", "transport: quic\n"), "--", "env")
	wantErr(err, `flag.yaml:1: transport: want one of auto, direct, port-forward, not "quic"`)

	_, err = run("exec", "--config", "missing.yaml", "--", "env")
	wantErr(err, "--config: open missing.yaml: ")
	t.Setenv(configfile.Env, "missing.yaml")
	_, err = run("exec", "--", "env")
	wantErr(err, "$REMOCAL_CONFIG: open missing.yaml: ")
	t.Setenv(configfile.Env, "")

	// --config '' reads no file, not even the working directory's.
	_, err = run("exec", "--config=", "--", "env")
	wantErr(err, `a TARGET (TYPE/NAME) is required, on the command line or as "target" in .remocal.yaml`)

	// A file alone makes a session: its target, no flags, the command after --.
	write(".remocal.yaml", "target: pod/web\nsteal: true\nhttp-header: 'X-Dev: alice'\n")
	stderr, err := run("exec", "--", "env")
	if !errors.Is(err, reachedRun) {
		t.Errorf("exec with the file's target: %v, want it to reach Run", err)
	}
	if !strings.Contains(stderr, "remocal: settings from .remocal.yaml\n") {
		t.Errorf("stderr does not say where the settings came from: %q", stderr)
	}
	// The file's values are checked as flags are.
	write(".remocal.yaml", "target: pod/web\nhttp-header: 'X-Dev: alice'\n")
	_, err = run("exec", "--", "env")
	wantErr(err, "--http-header chooses which requests to steal: add --steal")

	// port-forward with no TARGET takes the file's, and its section.
	write(".remocal.yaml", "target: pod/web\nport-forward:\n  local: [bad]\n")
	_, err = run("port-forward")
	wantErr(err, `-L "bad" is not [LOCALHOST:]LOCALPORT:HOST:PORT`)
}

// Each key of the file sets a flag of the commands that take it, and each flag of exec and
// port-forward has a key: the file holds everything the flags hold, and nothing else.
func TestConfigKeysAreTheFlags(t *testing.T) {
	root := NewCmdRemocal(genericiooptions.NewTestIOStreamsDiscard())
	commands := map[string]*cobra.Command{}
	for _, name := range []string{"exec", "port-forward", "doctor"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		commands[name] = cmd
	}
	// Not keys: the file cannot name another file, a test flag stays off it, and doctor's
	// report format is not a session's setting.
	notKeys := []string{configfile.Flag, "debug-break-link-every", "debug-direct-ip-family", "output"}
	// kubectl's connection flags: the file holds the two that pick where, not credentials.
	global := []string{"namespace", "context"}

	hasKey := map[string]map[string]bool{"exec": {}, "port-forward": {}, "doctor": {}}
	var check func(prefix string, keys []configfile.Key, only string)
	check = func(prefix string, keys []configfile.Key, only string) {
		for _, k := range keys {
			if configfile.Description(k, cmp.Or(k.Cmd, only), flagOf(root)) == "" {
				t.Errorf("key %s%s has no description: no doc tag, no flag", prefix, k.Name)
			}
			cmdName := cmp.Or(k.Cmd, only)
			if k.Section != nil {
				check(prefix+k.Name+".", k.Section, k.Cmd)
				continue
			}
			if k.Flag == "" {
				continue // target
			}
			for name, cmd := range commands {
				if cmdName != "" && cmdName != name {
					continue
				}
				if cmd.Flags().Lookup(k.Flag) == nil && cmd.InheritedFlags().Lookup(k.Flag) == nil {
					t.Errorf("key %s%s: %s has no --%s", prefix, k.Name, name, k.Flag)
				}
				hasKey[name][k.Flag] = true
			}
		}
	}
	check("", configfile.Keys(), "")
	for _, g := range global {
		if !hasKey["exec"][g] || !hasKey["port-forward"][g] {
			t.Errorf("no key for kubectl's --%s", g)
		}
	}
	for name, cmd := range commands {
		cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !hasKey[name][f.Name] && !slices.Contains(notKeys, f.Name) {
				t.Errorf("%s --%s has no key in the file", name, f.Name)
			}
		})
	}
}
