package plugin

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// configFileName is read from the working directory when no file is named.
const configFileName = ".remocal.yaml"

// fileConfig is the configuration file (.remocal.yaml): the flags of exec and port-forward under
// their long names, plus the TARGET. It is the one description of the file: the decoder
// (configdecode.go), the flag setter (configfile.go) and "config schema" (configschema.go) all
// read its field tags, so a key added here is decoded, applied and documented at once.
//
// Tags: yaml is the key, which is also the long flag the key sets (flag:"-" for a key that is
// no flag); cmd names the only command that takes the key, when one does; doc is the key's
// description in the schema; enum lists the only values a string takes; scalar widens what a
// string accepts ("int": a number too, "any": a number or a boolean too; otherwise only a YAML
// string, so that a mistyped value is caught, not converted); trust marks a key that a file
// found in the working directory may set only once the user trusts it (configtrust.go), and
// says why.
//
// Top-level keys without cmd serve both commands. port-forward's own -L and -R are in its
// section: their long names, --local and --remote, would clash with exec's --local.
type fileConfig struct {
	Target    string `yaml:"target" flag:"-" doc:"The workload or pod to act as, TYPE/NAME (pod/NAME, deployment/NAME, statefulset/NAME, replicaset/NAME, daemonset/NAME, job/NAME); a TARGET on the command line replaces it."`
	Namespace string `yaml:"namespace" doc:"Namespace of the target (kubectl's -n)."`
	Context   string `yaml:"context" trust:"chooses the cluster and the credentials" doc:"kubeconfig context to use (kubectl's --context)."`
	Container string `yaml:"container" doc:"Container of the pod to act as (-c); default: the kubectl.kubernetes.io/default-container annotation, else the first."`

	SidecarImage string        `yaml:"sidecar-image" trust:"chooses the image that runs in the pod" doc:"Image of the sidecar added to the pod (--sidecar-image)."`
	StartTimeout time.Duration `yaml:"start-timeout" doc:"How long to wait for the sidecar to run, a duration such as 90s (--start-timeout; default 1m)."`
	TTL          time.Duration `yaml:"ttl" doc:"A new sidecar exits after this long without a client, a duration such as 30m (--ttl; default 10m)."`
	MaxLifetime  time.Duration `yaml:"max-lifetime" doc:"A new sidecar ends its sessions and exits after this long even with clients, a duration such as 24h (--max-lifetime; default 12h)."`
	Transport    string        `yaml:"transport" enum:"auto,direct,port-forward" doc:"How to reach the sidecar (--transport): auto (direct when the pod IP is reachable, else port-forward), direct, port-forward."`

	Steal       bool     `yaml:"steal" cmd:"exec" doc:"New connections to the pod's ports the command listens on come to it instead of the pod's app (--steal); default: a copy of them (mirror)."`
	NoIncoming  bool     `yaml:"no-incoming" cmd:"exec" doc:"Leave the pod's incoming traffic alone, neither mirror nor steal (--no-incoming)."`
	HTTPHeader  string   `yaml:"http-header" cmd:"exec" doc:"With steal, take only the HTTP requests with this header, 'Name: regex' (--http-header)."`
	HTTPPath    string   `yaml:"http-path" cmd:"exec" doc:"With steal, take only the HTTP requests whose path matches this regex (--http-path)."`
	PortMap     []string `yaml:"port-map" cmd:"exec" doc:"LOCAL:REMOTE, the command's listening port LOCAL takes the pod's port REMOTE (-p)."`
	Ports       []string `yaml:"ports" cmd:"exec" scalar:"int" doc:"Take only these of the command's listening ports (--ports)."`
	IgnorePorts []string `yaml:"ignore-ports" cmd:"exec" scalar:"int" doc:"Never take these of the command's listening ports (--ignore-ports)."`

	Local      []string `yaml:"local" cmd:"exec" doc:"Keep connections to these CIDRs, IPs or HOST:PORTs on this machine instead of making them from the pod (--local)."`
	NoOutgoing bool     `yaml:"no-outgoing" cmd:"exec" doc:"Make every outgoing connection and DNS lookup from this machine, not from the pod (--no-outgoing)."`

	EnvInclude []string          `yaml:"env-include" cmd:"exec" doc:"Take only the remote variables matching these globs; the exact name of a variable kept local by default (LD_PRELOAD, GOFLAGS...) takes it as well (--env-include)."`
	EnvExclude []string          `yaml:"env-exclude" cmd:"exec" doc:"Leave out the remote variables matching these globs (--env-exclude)."`
	Env        map[string]string `yaml:"env" cmd:"exec" scalar:"any" doc:"Variables set in the command's environment, over local and remote ones (-e KEY=VALUE)."`
	EnvFile    string            `yaml:"env-file" cmd:"exec" trust:"chooses a file of this machine to write" doc:"Write the remote environment to this file instead of running a command, or as well as a command given after -- (--env-file)."`

	FSMode        string   `yaml:"fs-mode" cmd:"exec" enum:"read,write,local" trust:"write lets the command change the pod's files" doc:"The pod's files the command sees at their pod paths (--fs-mode): read (read-only), write (changes go to the pod when a file is closed), local (none)."`
	FSRemote      []string `yaml:"fs-remote" cmd:"exec" doc:"Also show the pod's files at these absolute paths or globs (--fs-remote)."`
	FSLocal       []string `yaml:"fs-local" cmd:"exec" doc:"Keep this machine's files at these paths or globs where a volume mount of the pod would cover them (--fs-local)."`
	FSNotFound    []string `yaml:"fs-not-found" cmd:"exec" doc:"Make this machine's paths matching these globs look absent, e.g. ~/.kube (--fs-not-found)."`
	FSMaxFileSize string   `yaml:"fs-max-file-size" cmd:"exec" scalar:"int" doc:"Opening a remote file larger than this fails with EFBIG, a quantity such as 4Mi, at most 16Mi (--fs-max-file-size)."`

	PortForward *portForwardConfig `yaml:"port-forward" cmd:"port-forward" doc:"The -L and -R rules of port-forward."`

	// lines holds the line of each key the file set, by path ("steal", "port-forward.local"):
	// what was set, and where, for the errors of applying it.
	lines map[string]int
}

// portForwardConfig is the port-forward section of the file.
type portForwardConfig struct {
	Local  []string `yaml:"local" trust:"can listen beyond this machine's loopback" doc:"[LOCALHOST:]LOCALPORT:HOST:PORT, forward a local port to HOST:PORT as seen from the pod (-L)."`
	Remote []string `yaml:"remote" trust:"sends the pod's clients to a port of this machine" doc:"REMOTEPORT:LOCALPORT, new connections to the pod's REMOTEPORT come to this machine's LOCALPORT (-R)."`
}

// configKey is one key of the file, as fileConfig's tags describe it.
type configKey struct {
	name    string // the YAML key
	flag    string // the long flag it sets; "" for none
	cmd     string // the only command that takes it; "" for all
	doc     string
	enum    []string
	scalar  string // "", "int" or "any": see fileConfig
	trust   string // why a discovered file needs the user's trust to set it; "" when it does not
	index   int    // of the struct field
	typ     reflect.Type
	section []configKey // the keys of a section
}

var durationType = reflect.TypeFor[time.Duration]()

// configKeys describes the keys of a struct like fileConfig, in field order.
func configKeys(t reflect.Type) []configKey {
	var keys []configKey
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" {
			continue
		}
		k := configKey{name: name, flag: name, cmd: f.Tag.Get("cmd"), doc: f.Tag.Get("doc"), scalar: f.Tag.Get("scalar"), trust: f.Tag.Get("trust"), index: i, typ: f.Type}
		if f.Tag.Get("flag") == "-" {
			k.flag = ""
		}
		if e := f.Tag.Get("enum"); e != "" {
			k.enum = strings.Split(e, ",")
		}
		switch {
		case f.Type == durationType, f.Type.Kind() == reflect.String, f.Type.Kind() == reflect.Bool,
			f.Type == reflect.TypeFor[[]string](), f.Type == reflect.TypeFor[map[string]string]():
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			k.flag = ""
			k.section = configKeys(f.Type.Elem())
		default:
			// Only a programmer adding a field gets here, and the unit tests do first.
			panic(fmt.Sprintf("config key %s: unsupported type %s", name, f.Type))
		}
		keys = append(keys, k)
	}
	return keys
}

// fileKeys are the top-level keys of the file.
var fileKeys = configKeys(reflect.TypeFor[fileConfig]())
