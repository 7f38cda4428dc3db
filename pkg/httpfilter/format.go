package httpfilter

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Format writes f as users write it (--http-filter, the configuration file's http-filter):
// one mapping per node, in JSON, which is also YAML. Two trees are the same filter as written
// when they format the same.
func Format(f wire.HTTPFilter) string {
	var b strings.Builder
	format(&b, f)
	return b.String()
}

func format(b *strings.Builder, f wire.HTTPFilter) {
	b.WriteString(`{"` + f.Op.String() + `":`)
	if f.Op.Leaf() {
		quote(b, f.Arg)
	} else {
		b.WriteByte('[')
		for i, s := range f.Sub {
			if i > 0 {
				b.WriteByte(',')
			}
			format(b, s)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

// quote writes s as a JSON string, leaving <, > and & as they are: the text is for people.
func quote(b *strings.Builder, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
