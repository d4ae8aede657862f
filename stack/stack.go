package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"gopkg.in/yaml.v3"
)

// File is a parsed stack file.
type File struct {
	// Path is where the file was read from.
	Path      string
	Version   string
	Provider  Provider
	Functions map[string]Function
}

// Provider is the provider section.
type Provider struct {
	Name    string `yaml:"name"`
	Gateway string `yaml:"gateway"`
}

// Function is one entry under functions.
type Function struct {
	Name        string            `yaml:"-"`
	Lang        string            `yaml:"lang"`
	Handler     string            `yaml:"handler"`
	Image       string            `yaml:"image"`
	FProcess    string            `yaml:"fprocess"`
	Environment map[string]string `yaml:"environment"`
	BuildArgs   map[string]string `yaml:"build_args"`
	SkipBuild   bool              `yaml:"skip_build"`
	// Line is where the function's key stands in the file.
	Line int `yaml:"-"`
}

// Error is a mistake in a stack file; it names the file, line and key.
type Error struct {
	Path string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.Path, e.Line, e.Key, e.Msg)
}

// Find returns the stack file to use: the one given, else ./stack.yaml,
// else ./stack.yml, as faas-cli chooses.
func Find(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	for _, p := range []string{"stack.yaml", "stack.yml"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no stack file: pass -f FILE, or a DIR with --lang and --image")
}

// dns1123 is the function name rule faas-cli and faas-netes enforce.
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Read reads and checks the stack file at path.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stack file %s not found", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse checks and decodes stack file content; path is used in errors.
func Parse(path string, data []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &Error{Path: path, Line: 1, Msg: "not a stack file: want a mapping with provider and functions"}
	}
	root := doc.Content[0]
	f := &File{Path: path, Functions: map[string]Function{}}
	var providerLine int
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		switch key.Value {
		case "version":
			f.Version = val.Value
			if f.Version != "" && f.Version != "1.0" {
				return nil, &Error{Path: path, Line: val.Line, Key: "version", Msg: fmt.Sprintf("%q is not supported; the only stack version is 1.0", f.Version)}
			}
		case "provider":
			providerLine = key.Line
			if err := val.Decode(&f.Provider); err != nil {
				return nil, &Error{Path: path, Line: val.Line, Key: "provider", Msg: err.Error()}
			}
		case "functions":
			if val.Kind != yaml.MappingNode {
				return nil, &Error{Path: path, Line: val.Line, Key: "functions", Msg: "want a mapping of function names"}
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				nameNode, fnNode := val.Content[j], val.Content[j+1]
				var fn Function
				if err := fnNode.Decode(&fn); err != nil {
					return nil, &Error{Path: path, Line: fnNode.Line, Key: "functions." + nameNode.Value, Msg: err.Error()}
				}
				fn.Name, fn.Line = nameNode.Value, nameNode.Line
				if !dns1123.MatchString(fn.Name) || len(fn.Name) > 63 {
					return nil, &Error{Path: path, Line: nameNode.Line, Key: "functions." + fn.Name, Msg: "function names must be lowercase letters, digits and '-', at most 63 characters"}
				}
				if err := checkFunction(path, nameNode.Value, fnNode); err != nil {
					return nil, err
				}
				f.Functions[fn.Name] = fn
			}
		}
	}
	if f.Provider.Name != "openfaas" {
		line := providerLine
		if line == 0 {
			line = 1
		}
		return nil, &Error{Path: path, Line: line, Key: "provider.name", Msg: fmt.Sprintf("must be openfaas, got %q", f.Provider.Name)}
	}
	return f, nil
}

func checkFunction(path, name string, node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return &Error{Path: path, Line: node.Line, Key: "functions." + name, Msg: "want a mapping with lang, handler and image"}
	}
	present := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		present[node.Content[i].Value] = node.Content[i+1].Value != "" || node.Content[i+1].Kind != yaml.ScalarNode
	}
	for _, key := range []string{"lang", "handler", "image"} {
		if !present[key] {
			return &Error{Path: path, Line: node.Line, Key: "functions." + name + "." + key, Msg: "missing"}
		}
	}
	return nil
}

// Names returns the function names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Functions))
	for n := range f.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HandlerDir returns fn's handler folder as an absolute path, resolved
// against the working directory as faas-cli does.
func HandlerDir(fn Function) (string, error) {
	return filepath.Abs(fn.Handler)
}
