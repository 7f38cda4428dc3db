package layering

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// detachedContexts are the places below a main that may begin a context of their own, or keep
// one in a struct, by "file:function" (a struct field by "file:Type"), each with its reason.
// Everywhere else a context comes from the caller, so that cancelling at main reaches it
// (STYLE.md, convention 2).
var detachedContexts = map[string]string{
	"layer/supervisor.go:Supervisor":   "the supervisor's lifetime, ended by Close: trapped syscalls are answered on its own goroutines, which no caller's context reaches",
	"layer/supervisor.go:New":          "begins that lifetime: a Supervisor outlives the call that makes it, until Close",
	"pkg/sidecarclient/lanes.go:lanes": "the lanes' lifetime, the QUIC connection's: lanes are kept ready and re-attached on their own goroutines, long after the call that opened them",
}

// contextUse is a place that begins a context or keeps one in a struct.
type contextUse struct {
	key  string // file:function, or file:Type for a field
	file string
	pos  token.Position
	what string
}

// contextUses finds, in the Go file at path (named rel in keys), the calls to
// context.Background and context.TODO and the struct fields of type context.Context. A package
// main is where contexts begin: its files have none.
func contextUses(t *testing.T, path, rel string) []contextUse {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Errorf("parse %s: %v", rel, err)
		return nil
	}
	if f.Name.Name == "main" {
		return nil
	}
	ctxName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "context" {
			ctxName = "context"
			if imp.Name != nil {
				ctxName = imp.Name.Name
			}
		}
	}
	if ctxName == "" || ctxName == "_" {
		return nil
	}
	isContext := func(e ast.Expr, names ...string) bool {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		x, ok := sel.X.(*ast.Ident)
		return ok && x.Name == ctxName && slices.Contains(names, sel.Sel.Name)
	}
	var uses []contextUse
	var find func(n ast.Node, owner string)
	find = func(n ast.Node, owner string) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				if n.Name.Name != owner {
					find(n.Type, n.Name.Name) // a type declared in a function is named as itself
					return false
				}
			case *ast.CallExpr:
				if isContext(n.Fun, "Background", "TODO") {
					uses = append(uses, contextUse{rel + ":" + owner, rel, fset.Position(n.Pos()), "calls " + ctxName + "." + n.Fun.(*ast.SelectorExpr).Sel.Name + "()"})
				}
			case *ast.StructType:
				for _, field := range n.Fields.List {
					if isContext(field.Type, "Context") {
						uses = append(uses, contextUse{rel + ":" + owner, rel, fset.Position(field.Pos()), "keeps a context.Context in a struct"})
					}
				}
			}
			return true
		})
	}
	for _, decl := range f.Decls {
		find(decl, declName(decl))
	}
	return uses
}

// declName names a top-level declaration: a function as F or Type.Method, a type as itself.
func declName(decl ast.Decl) string {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil || len(d.Recv.List) == 0 {
			return d.Name.Name
		}
		recv := d.Recv.List[0].Type
		if star, ok := recv.(*ast.StarExpr); ok {
			recv = star.X
		}
		switch r := recv.(type) {
		case *ast.IndexExpr: // a generic type
			recv = r.X
		case *ast.IndexListExpr:
			recv = r.X
		}
		if id, ok := recv.(*ast.Ident); ok {
			return id.Name + "." + d.Name.Name
		}
		return d.Name.Name
	case *ast.GenDecl:
		if len(d.Specs) == 1 {
			if ts, ok := d.Specs[0].(*ast.TypeSpec); ok {
				return ts.Name.Name
			}
		}
	}
	return "package scope"
}

func TestContextsComeFromTheCaller(t *testing.T) {
	root := moduleRoot(t)
	var uses []contextUse
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// cmd/ holds the mains and test/ the harness that drives them; testdata is no code.
			skip := rel == "cmd" || rel == "test" || d.Name() == "testdata" || d.Name() == "vendor" ||
				rel != "." && strings.HasPrefix(d.Name(), ".")
			if skip {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			uses = append(uses, contextUses(t, path, rel)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, u := range uses {
		found[u.key] = true
		if _, ok := detachedContexts[u.key]; !ok {
			t.Errorf("%s:%d: %s: take a ctx from the caller, or add %q to detachedContexts with the reason it must be detached", u.file, u.pos.Line, u.what, u.key)
		}
	}
	// An entry whose place no longer begins a context would allow the next one there unseen.
	for key := range detachedContexts {
		if !found[key] {
			t.Errorf("detachedContexts allows %s, which no longer begins or keeps a context: remove it", key)
		}
	}
}

func TestContextUses(t *testing.T) {
	const src = `package p

import stdctx "context"

type server struct {
	name string
	ctx  stdctx.Context
}

func (s *server) serve() {
	type call struct{ stdctx.Context }
	_ = stdctx.TODO()
}

func start() { _, _ = stdctx.WithCancel(stdctx.Background()) }

func fine(ctx stdctx.Context) { _, _ = stdctx.WithCancel(ctx) }
`
	path := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range contextUses(t, path, "p/p.go") {
		got = append(got, fmt.Sprintf("%s:%d %s", u.key, u.pos.Line, u.what))
	}
	want := []string{
		"p/p.go:server:7 keeps a context.Context in a struct",
		"p/p.go:call:11 keeps a context.Context in a struct",
		"p/p.go:server.serve:12 calls stdctx.TODO()",
		"p/p.go:start:15 calls stdctx.Background()",
	}
	if !slices.Equal(got, want) {
		t.Errorf("contextUses:\n got %q\nwant %q", got, want)
	}
}
