package openapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

// FragmentNames are the files, in a function's handler folder, that hold
// its fragment, in the order they are looked for.
var FragmentNames = []string{"openapi.yaml", "openapi.yml", "openapi.json"}

// FindFragment returns the path of the fragment in handler folder dir,
// "" when there is none.
func FindFragment(dir string) (string, error) {
	for _, n := range FragmentNames {
		p := filepath.Join(dir, n)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("looking for an OpenAPI fragment: %w", err)
		}
	}
	return "", nil
}

// FragmentError is a fragment that cannot be used: its file, the line
// when known, and why.
type FragmentError struct {
	Path string
	Line int
	Msg  string
}

func (e *FragmentError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:unmarshal errors:\s*)?line (\d+): (.*)$`)

// LoadFragment reads the fragment in path, YAML or JSON: an OpenAPI 3.0
// document whose paths are relative to the function. openapi and info
// may be left out; $refs to other files are resolved (relative to path)
// and brought into its components. A fragment that is not valid is a
// *FragmentError.
func LoadFragment(ctx context.Context, path string) (*openapi3.T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI fragment: %w", err)
	}
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		msg := oneLine(err.Error())
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &FragmentError{Path: path, Line: line, Msg: m[2]}
		}
		return nil, &FragmentError{Path: path, Msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, &FragmentError{Path: path, Msg: "want an OpenAPI document (a map with paths)"}
	}
	switch v := top["openapi"].(type) {
	case nil:
		if _, ok := top["swagger"]; ok {
			return nil, &FragmentError{Path: path, Msg: "swagger 2.0: want OpenAPI 3.0 (convert it, e.g. with swagger2openapi)"}
		}
		top["openapi"] = "3.0.3"
	case string:
		if !strings.HasPrefix(v, "3.0.") {
			return nil, &FragmentError{Path: path, Msg: fmt.Sprintf("openapi %q: want 3.0.x, the version of the merged document", v)}
		}
	default:
		return nil, &FragmentError{Path: path, Msg: fmt.Sprintf("openapi %v: want a version string such as \"3.0.3\"", v)}
	}
	if _, ok := top["info"]; !ok {
		top["info"] = map[string]any{"title": filepath.Base(filepath.Dir(path)), "version": "1.0.0"}
	}
	if _, ok := top["paths"]; !ok {
		top["paths"] = map[string]any{}
	}
	data, err := json.Marshal(top)
	if err != nil {
		return nil, &FragmentError{Path: path, Msg: oneLine(err.Error())}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI fragment: %w", err)
	}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	loader.IsExternalRefsAllowed = true
	doc, err := loader.LoadFromDataWithPath(data, &url.URL{Path: abs})
	if err != nil {
		// The loader tries JSON, then YAML, of what is JSON here: the
		// YAML half, with its line in that JSON, only confuses.
		msg, _, _ := strings.Cut(oneLine(err.Error()), ", yaml error:")
		return nil, &FragmentError{Path: path, Msg: msg}
	}
	doc.InternalizeRefs(ctx, nil)
	if err := doc.Validate(ctx); err != nil {
		return nil, &FragmentError{Path: path, Msg: oneLine(err.Error())}
	}
	for _, p := range doc.Paths.Keys() {
		if !strings.HasPrefix(p, "/") {
			return nil, &FragmentError{Path: path, Msg: fmt.Sprintf("path %q: want a path starting with /, relative to the function", p)}
		}
	}
	return doc, nil
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
