// Package configfile is the engine of the configuration file, .remocal.yaml: its keys (File),
// the decoder that reads it with errors at a line, the applier that sets a command's flags
// from it, and its JSON Schema. The commands that read the file, and the trust a discovered
// file needs, are the plugin's.
package configfile

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// FileName is read from the working directory when no file is named.
const FileName = ".remocal.yaml"

// File is the configuration file (.remocal.yaml): the flags of exec and port-forward under
// their long names, plus the TARGET. It is the one description of the file: the decoder
// (decode.go), the flag setter (apply.go) and the schema (schema.go) all read its field tags,
// so a key added here is decoded, applied and documented at once.
//
// Tags: yaml is the key, which is also the long flag the key sets (flag:"-" for a key that is
// no flag); cmd names the only command that takes the key, when one does; doc describes a key
// that sets no flag (a flag's usage describes its key); enum lists the only values a string
// takes; scalar widens what a
// string accepts ("int": a number too, "any": a number or a boolean too; otherwise only a YAML
// string, so that a mistyped value is caught, not converted); trust marks a key that a file
// found in the working directory may set only once the user trusts it (the plugin's
// configtrust.go), and says why.
//
// Top-level keys without cmd serve both commands. port-forward's own -L and -R are in its
// section: their long names, --local and --remote, would clash with exec's --local.
type File struct {
	Target    string `yaml:"target" flag:"-" doc:"The workload or pod to act as, TYPE/NAME (pod/NAME, deployment/NAME, statefulset/NAME, replicaset/NAME, daemonset/NAME, job/NAME); a TARGET on the command line replaces it."`
	Namespace string `yaml:"namespace"`
	Context   string `yaml:"context" trust:"chooses the cluster and the credentials"`
	Container string `yaml:"container"`

	SidecarImage string        `yaml:"sidecar-image" trust:"chooses the image that runs in the pod"`
	StartTimeout time.Duration `yaml:"start-timeout"`
	TTL          time.Duration `yaml:"ttl"`
	MaxLifetime  time.Duration `yaml:"max-lifetime"`
	Transport    string        `yaml:"transport" enum:"auto,direct,port-forward"`
	UserLabel    string        `yaml:"user-label"`

	Steal       bool             `yaml:"steal" cmd:"exec"`
	NoIncoming  bool             `yaml:"no-incoming" cmd:"exec"`
	NoFollow    bool             `yaml:"no-follow" cmd:"exec"`
	HTTPHeader  string           `yaml:"http-header" cmd:"exec"`
	HTTPPath    string           `yaml:"http-path" cmd:"exec"`
	HTTPMethod  string           `yaml:"http-method" cmd:"exec"`
	HTTPQuery   []string         `yaml:"http-query" cmd:"exec"`
	HTTPFilter  *wire.HTTPFilter `yaml:"http-filter" cmd:"exec"`
	PortMap     []string         `yaml:"port-map" cmd:"exec"`
	Ports       []string         `yaml:"ports" cmd:"exec" scalar:"int"`
	IgnorePorts []string         `yaml:"ignore-ports" cmd:"exec" scalar:"int"`

	Local      []string `yaml:"local" cmd:"exec"`
	NoOutgoing bool     `yaml:"no-outgoing" cmd:"exec"`

	EnvInclude []string          `yaml:"env-include" cmd:"exec"`
	EnvExclude []string          `yaml:"env-exclude" cmd:"exec"`
	Env        map[string]string `yaml:"env" cmd:"exec" scalar:"any"`
	EnvFile    string            `yaml:"env-file" cmd:"exec" trust:"chooses a file of this machine to write"`

	FSMode        string   `yaml:"fs-mode" cmd:"exec" enum:"read,write,local" trust:"write lets the command change the pod's files"`
	FSRemote      []string `yaml:"fs-remote" cmd:"exec"`
	FSLocal       []string `yaml:"fs-local" cmd:"exec"`
	FSNotFound    []string `yaml:"fs-not-found" cmd:"exec"`
	FSMaxFileSize string   `yaml:"fs-max-file-size" cmd:"exec" scalar:"int"`

	PortForward *PortForward `yaml:"port-forward" cmd:"port-forward" doc:"The -L and -R rules of port-forward."`

	// lines holds the line of each key the file set, by path ("steal", "port-forward.local"):
	// what was set, and where, for the errors of applying it.
	lines map[string]int
}

// Sets tells whether the file set the key at path ("steal", "port-forward.local").
func (f *File) Sets(path string) bool {
	_, ok := f.lines[path]
	return ok
}

// PortForward is the port-forward section of the file.
type PortForward struct {
	Local  []string `yaml:"local" trust:"can listen beyond this machine's loopback"`
	Remote []string `yaml:"remote" trust:"sends the pod's clients to a port of this machine"`
}

// Key is one key of the file, as File's tags describe it.
type Key struct {
	Name   string // the YAML key
	Flag   string // the long flag it sets; "" for none
	Cmd    string // the only command that takes it; "" for all
	Doc    string // what a key that sets no flag does; a flag's usage says it for the others
	Enum   []string
	Scalar string // "", "int" or "any": see File
	// Trust says why a discovered file needs the user's trust to set the key; "" when it does
	// not.
	Trust   string
	Section []Key // the keys of a section

	index int // of the struct field
	typ   reflect.Type
}

var durationType = reflect.TypeFor[time.Duration]()

// keysOf describes the keys of a struct like File, in field order.
func keysOf(t reflect.Type) []Key {
	var keys []Key
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" {
			continue
		}
		k := Key{Name: name, Flag: name, Cmd: f.Tag.Get("cmd"), Doc: f.Tag.Get("doc"), Scalar: f.Tag.Get("scalar"), Trust: f.Tag.Get("trust"), index: i, typ: f.Type}
		if f.Tag.Get("flag") == "-" {
			k.Flag = ""
		}
		if e := f.Tag.Get("enum"); e != "" {
			k.Enum = strings.Split(e, ",")
		}
		switch {
		case f.Type == durationType, f.Type.Kind() == reflect.String, f.Type.Kind() == reflect.Bool,
			f.Type == reflect.TypeFor[[]string](), f.Type == reflect.TypeFor[map[string]string](),
			f.Type == filterType:
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			k.Flag = ""
			k.Section = keysOf(f.Type.Elem())
		default:
			// Only a programmer adding a field gets here, and the unit tests do first.
			panic(fmt.Sprintf("config key %s: unsupported type %s", name, f.Type))
		}
		keys = append(keys, k)
	}
	return keys
}

// fileKeys are the top-level keys of the file.
var fileKeys = keysOf(reflect.TypeFor[File]())

// Keys are the top-level keys of the file, in the order File declares them.
func Keys() []Key { return fileKeys }
