package golang

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/languages"
)

// layout is how a handler folder becomes the image's binary.
type layout int

const (
	// layoutMain is lang go's package main, built as it is.
	layoutMain layout = iota
	// layoutMiddleware is golang-middleware's Handle(w, r), served by
	// kiln's main program.
	layoutMiddleware
	// layoutClassic is lang go's package function, OpenFaaS's classic go
	// template: Handle(req []byte) string, run once per request.
	layoutClassic
	// layoutHTTP is golang-http's Handle(handler.Request)
	// (handler.Response, error), served by kiln's main program.
	layoutHTTP
)

func (l layout) String() string {
	switch l {
	case layoutMain:
		return "main"
	case layoutMiddleware:
		return LangMiddleware
	case layoutClassic:
		return "classic"
	case layoutHTTP:
		return LangHTTP
	}
	return fmt.Sprintf("layout(%d)", int(l))
}

// The Handle each function layout wants, as the user writes it.
var handleSignature = map[layout]string{
	layoutMiddleware: "func Handle(w http.ResponseWriter, r *http.Request)",
	layoutClassic:    "func Handle(req []byte) string",
	layoutHTTP:       "func Handle(req handler.Request) (handler.Response, error)",
}

// The lang that builds each function layout.
var layoutLang = map[layout]string{
	layoutMiddleware: LangMiddleware,
	layoutClassic:    LangMain,
	layoutHTTP:       LangHTTP,
}

// goWants says what lang go builds, for its errors.
var goWants = "lang go builds a package main, or a package function with " + handleSignature[layoutClassic] + " (OpenFaaS's classic go template)"

// packageClause is the package a Go file of the handler folder declares.
type packageClause struct {
	name string
	path string
	line int
}

// readPackage returns the package of the handler folder's Go files,
// reading only their package clauses and build constraints: the files the
// compiler would take for platform, tests left out. It returns a
// *languages.SourceError when there is no such file or when two files
// disagree.
func readPackage(dir, arch string) (packageClause, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return packageClause{}, fmt.Errorf("reading %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	var found []packageClause
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			se := &languages.SourceError{Path: path, Reason: err.Error()}
			var list scanner.ErrorList
			if errors.As(err, &list) && len(list) > 0 {
				se.Line, se.Reason = list[0].Pos.Line, list[0].Msg
			}
			return packageClause{}, se
		}
		if !buildsFor(f, arch) {
			continue
		}
		found = append(found, packageClause{name: f.Name.Name, path: path, line: fset.Position(f.Name.Pos()).Line})
	}
	if len(found) == 0 {
		return packageClause{}, &languages.SourceError{Path: dir, Reason: "no Go files"}
	}
	for _, c := range found[1:] {
		if c.name != found[0].name {
			return packageClause{}, &languages.SourceError{Path: c.path, Line: c.line, Reason: fmt.Sprintf("package %s, while %s is package %s: a handler folder holds one package", c.name, filepath.Base(found[0].path), found[0].name)}
		}
	}
	return found[0], nil
}

// buildsFor evaluates the file's //go:build line for a CGO-less Linux
// build on arch, which is how the pack compiles.
func buildsFor(f *ast.File, arch string) bool {
	for _, g := range f.Comments {
		if g.Pos() >= f.Package {
			break
		}
		for _, c := range g.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return true // the compiler reports it
			}
			return expr.Eval(func(tag string) bool {
				return tag == "linux" || tag == "unix" || tag == arch || tag == "gc" || strings.HasPrefix(tag, "go1.")
			})
		}
	}
	return true
}

// checkHandle looks for the function's Handle before the compiler does:
// a folder without one, or with the Handle of another template, gets an
// error that names the lang to use. Any other mistake is the compiler's
// to report.
func checkHandle(dir string, want layout) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // the compiler reports syntax errors with their place
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Name.Name != "Handle" {
				continue
			}
			got, known := handleLayout(fd.Type)
			if !known || got == want {
				return nil
			}
			return &languages.SourceError{
				Path:   path,
				Line:   fset.Position(fd.Pos()).Line,
				Reason: fmt.Sprintf("Handle is %s's (%s); build it with --lang %s, or write %s", got.template(), handleSignature[got], layoutLang[got], handleSignature[want]),
			}
		}
	}
	return &languages.SourceError{Path: dir, Reason: fmt.Sprintf("package function has no func Handle; lang %s wants %s", layoutLang[want], handleSignature[want])}
}

// template names the OpenFaaS template of a function layout.
func (l layout) template() string {
	if l == layoutClassic {
		return "the classic go template"
	}
	return l.String()
}

// handleLayout tells which template's Handle a signature is, by its
// types as written.
func handleLayout(ft *ast.FuncType) (layout, bool) {
	params, results := fieldTypes(ft.Params), fieldTypes(ft.Results)
	switch {
	case slices.Equal(params, []string{"[]byte"}) && slices.Equal(results, []string{"string"}):
		return layoutClassic, true
	case len(params) == 2 && len(results) == 0 && strings.HasSuffix(params[0], ".ResponseWriter") && strings.HasPrefix(params[1], "*") && strings.HasSuffix(params[1], ".Request"):
		return layoutMiddleware, true
	case len(params) == 1 && len(results) == 2 && !strings.HasPrefix(params[0], "*") && strings.HasSuffix(params[0], ".Request") && strings.HasSuffix(results[0], ".Response") && results[1] == "error":
		return layoutHTTP, true
	}
	return 0, false
}

// fieldTypes lists a parameter or result list's types, one per value.
func fieldTypes(fl *ast.FieldList) []string {
	if fl == nil {
		return nil
	}
	var out []string
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			out = append(out, types.ExprString(f.Type))
		}
	}
	return out
}
