package configfile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeConfig decodes whatever a cloned repository's .remocal.yaml may hold: never a
// panic, every refusal is one Error naming the file, and a file decodes the same twice.
func FuzzDecodeConfig(f *testing.F) {
	for _, seed := range []string{
		"target: deployment/web\nnamespace: shop\nsteal: true\n",
		"env:\n  A: 1\n  B: [x]\n",
		"port-forward:\n  local: [\"8080:db:5432\"]\n  remote: [\"1:2\"]\n",
		"ports: [8080, \"9090,9091\"]\nfs-max-file-size: 4Mi\nttl: 1h\n",
		"a: &x {b: *x}\n",
		"---\n---\n",
		"steal: yes\nenv-file: ~/.bashrc\n",
		"\t- [",
		"http-filter:\n  any-of:\n    - header: \"X-Dev: a\"\n    - {method: [GET, HEAD], query: dev=a}\nhttp-method: GET\nhttp-query: [a=b]\n",
		"http-filter: &f {all-of: [{path: x}, *f]}\n",
		"http-filter: {all-of: [{all-of: [{all-of: [{any-of: [{path: x}]}]}]}]}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode("f.yaml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "f.yaml" {
				t.Fatalf("error %q (%T) is not a Error of f.yaml", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is more than one line", err)
			}
			return
		}
		again, err := Decode("f.yaml", data)
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("decoding twice gave %+v then %+v, %v", cfg, again, err)
		}
	})
}
