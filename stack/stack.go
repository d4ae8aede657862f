package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/drone/envsubst"
	"gopkg.in/yaml.v3"
)

// File is a parsed stack file.
type File struct {
	// Path is where the file was read from: a path or a URL.
	Path          string
	Version       string
	Provider      Provider
	Functions     map[string]Function
	Configuration Configuration
}

// Provider is the provider section.
type Provider struct {
	Name    string `yaml:"name"`
	Gateway string `yaml:"gateway"`
}

// Configuration is the top-level configuration section.
type Configuration struct {
	Templates []Template `yaml:"templates"`
	// Copy lists project paths copied into every function's build context.
	Copy []string `yaml:"copy"`
	// copyLines holds the line of each Copy entry, for CopyError.
	copyLines []int
}

// Template is a template faas-cli would pull before building.
type Template struct {
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
}

// Resources is a limits or requests entry: Kubernetes quantities.
type Resources struct {
	Memory string `yaml:"memory" json:"memory,omitempty"`
	CPU    string `yaml:"cpu" json:"cpu,omitempty"`
}

// Function is one entry under functions. Pointer fields tell "absent" from
// "empty", which faas-cli's deploy distinguishes (constraints, labels,
// annotations).
type Function struct {
	Name                   string             `yaml:"-"`
	Lang                   string             `yaml:"lang"`
	Handler                string             `yaml:"handler"`
	Image                  string             `yaml:"image"`
	FProcess               string             `yaml:"fprocess"`
	Environment            map[string]string  `yaml:"environment"`
	EnvironmentFile        []string           `yaml:"environment_file"`
	Secrets                []string           `yaml:"secrets"`
	SkipBuild              bool               `yaml:"skip_build"`
	Constraints            *[]string          `yaml:"constraints"`
	Labels                 *map[string]string `yaml:"labels"`
	Annotations            *map[string]string `yaml:"annotations"`
	Limits                 *Resources         `yaml:"limits"`
	Requests               *Resources         `yaml:"requests"`
	ReadOnlyRootFilesystem bool               `yaml:"readonly_root_filesystem"`
	BuildOptions           []string           `yaml:"build_options"`
	Namespace              string             `yaml:"namespace"`
	BuildArgs              map[string]string  `yaml:"build_args"`
	// Platforms is read but unused, as in faas-cli.
	Platforms    string            `yaml:"platforms"`
	BuildSecrets map[string]string `yaml:"build_secrets"`
	// Line is where the function's key stands in the file.
	Line int `yaml:"-"`
	// Lines maps each key given for the function to its line, so that
	// later checks (a missing handler folder) can point at it.
	Lines map[string]int `yaml:"-"`
}

// KeyLine returns the line of the function's key ("limits.memory" too),
// else of its first part, else of the function.
func (fn Function) KeyLine(key string) int {
	if l, ok := fn.Lines[key]; ok {
		return l
	}
	if first, _, ok := strings.Cut(key, "."); ok {
		if l, ok := fn.Lines[first]; ok {
			return l
		}
	}
	return fn.Line
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

// CopyError returns an Error about entry i of configuration.copy.
func (f *File) CopyError(i int, format string, args ...any) *Error {
	line := 1
	if i < len(f.Configuration.copyLines) {
		line = f.Configuration.copyLines[i]
	}
	return &Error{Path: f.Path, Line: line, Key: "configuration.copy", Msg: fmt.Sprintf(format, args...)}
}

// copyLines returns the line of each entry of the configuration mapping's
// copy list.
func copyLines(conf *yaml.Node) []int {
	var lines []int
	for i := 0; conf.Kind == yaml.MappingNode && i+1 < len(conf.Content); i += 2 {
		if conf.Content[i].Value == "copy" {
			for _, item := range conf.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
		}
	}
	return lines
}

// FuncError returns an Error about key of fn in the file.
func (f *File) FuncError(fn Function, key, format string, args ...any) *Error {
	k := "functions." + fn.Name
	if key != "" {
		k += "." + key
	}
	return &Error{Path: f.Path, Line: fn.KeyLine(key), Key: k, Msg: fmt.Sprintf(format, args...)}
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

// Option configures Read and Parse.
type Option func(*options)

type options struct {
	getenv   func(string) string
	envsubst bool
	client   *http.Client
}

// WithEnv sets where ${VAR} values come from. Default: no variable is set.
func WithEnv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// WithEnvsubst turns substitution on or off (--envsubst). Default: on.
func WithEnvsubst(on bool) Option { return func(o *options) { o.envsubst = on } }

// WithHTTPClient sets the client for stack files given as URLs.
// Default: a client with faas-cli's 120 s timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

func newOptions(opts []Option) options {
	o := options{getenv: func(string) string { return "" }, envsubst: true, client: &http.Client{Timeout: 120 * time.Second}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Read reads and checks the stack file at path, which may be an http(s)
// URL.
func Read(ctx context.Context, path string, opts ...Option) (*File, error) {
	o := newOptions(opts)
	var b []byte
	var err error
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		b, err = fetch(ctx, o.client, path)
	} else {
		b, err = os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stack file %s not found", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(path, b, opts...)
}

func fetch(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// DNSLabel is the DNS-1123 label rule faas-cli and faas-netes enforce on
// function names (at most 63 characters, which callers check), and
// Kubernetes on secret names.
var DNSLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// lineRE finds the line number yaml.v3 puts in its messages.
var lineRE = regexp.MustCompile(`line (\d+)`)

// Parse substitutes the environment into data, then checks and decodes
// it; path is used in errors.
func Parse(path string, data []byte, opts ...Option) (*File, error) {
	o := newOptions(opts)
	text := string(data)
	if o.envsubst {
		var err error
		if text, err = envsubst.Eval(text, o.getenv); err != nil {
			return nil, &Error{Path: path, Line: substLine(data), Msg: "substituting environment variables: " + err.Error()}
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		line := 1
		if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &line)
		}
		msg := lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		return nil, &Error{Path: path, Line: line, Msg: strings.TrimPrefix(msg, ": ")}
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
			if err := decodeMapping(path, "provider", val, map[string]any{"name": &f.Provider.Name, "gateway": &f.Provider.Gateway}); err != nil {
				return nil, err
			}
		case "configuration":
			if err := decodeMapping(path, "configuration", val, map[string]any{"templates": &f.Configuration.Templates, "copy": &f.Configuration.Copy}); err != nil {
				return nil, err
			}
			f.Configuration.copyLines = copyLines(val)
		case "functions":
			if err := f.parseFunctions(val); err != nil {
				return nil, err
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

// substLine finds the first line where envsubst would choke: a ${ without
// its closing brace or with an unsupported operator.
func substLine(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range regexp.MustCompile(`\$\{[^}]*\}?`).FindAllString(line, -1) {
			if _, err := envsubst.Eval(m, func(string) string { return "" }); err != nil {
				return i + 1
			}
		}
	}
	return 1
}

func (f *File) parseFunctions(val *yaml.Node) error {
	if val.Kind != yaml.MappingNode {
		return &Error{Path: f.Path, Line: val.Line, Key: "functions", Msg: "want a mapping of function names"}
	}
	for j := 0; j+1 < len(val.Content); j += 2 {
		nameNode, fnNode := val.Content[j], val.Content[j+1]
		fn := Function{Name: nameNode.Value, Line: nameNode.Line, Lines: map[string]int{}}
		key := "functions." + fn.Name
		if !DNSLabel.MatchString(fn.Name) || len(fn.Name) > 63 {
			return &Error{Path: f.Path, Line: nameNode.Line, Key: key, Msg: "function names must be lowercase letters, digits and '-', at most 63 characters"}
		}
		if _, dup := f.Functions[fn.Name]; dup {
			return &Error{Path: f.Path, Line: nameNode.Line, Key: key, Msg: "defined twice"}
		}
		if fnNode.Kind != yaml.MappingNode {
			return &Error{Path: f.Path, Line: fnNode.Line, Key: key, Msg: "want a mapping with lang, handler and image"}
		}
		fields := map[string]any{
			"lang": &fn.Lang, "handler": &fn.Handler, "image": &fn.Image, "fprocess": &fn.FProcess,
			"environment": &fn.Environment, "environment_file": &fn.EnvironmentFile, "secrets": &fn.Secrets,
			"skip_build": &fn.SkipBuild, "constraints": &fn.Constraints, "labels": &fn.Labels,
			"annotations":              &fn.Annotations,
			"readonly_root_filesystem": &fn.ReadOnlyRootFilesystem, "build_options": &fn.BuildOptions,
			"namespace": &fn.Namespace, "build_args": &fn.BuildArgs, "platforms": &fn.Platforms,
			"build_secrets": &fn.BuildSecrets,
		}
		if err := decodeMapping(f.Path, key, fnNode, fields); err != nil {
			return err
		}
		for i := 0; i+1 < len(fnNode.Content); i += 2 {
			k, v := fnNode.Content[i], fnNode.Content[i+1]
			fn.Lines[k.Value] = k.Line
			if k.Value != "limits" && k.Value != "requests" {
				continue
			}
			// Decoded key by key, so that an error, and a later check of a
			// quantity, can name limits.memory and its line.
			r, err := decodeResources(f.Path, key+"."+k.Value, v)
			if err != nil {
				return err
			}
			if k.Value == "limits" {
				fn.Limits = r
			} else {
				fn.Requests = r
			}
			for j := 0; v.Kind == yaml.MappingNode && j+1 < len(v.Content); j += 2 {
				fn.Lines[k.Value+"."+v.Content[j].Value] = v.Content[j].Line
			}
		}
		if fn.Image == "" {
			return f.FuncError(fn, "image", "missing")
		}
		f.Functions[fn.Name] = fn
	}
	return nil
}

// decodeResources decodes a limits or requests entry; null is absent.
func decodeResources(path, key string, node *yaml.Node) (*Resources, error) {
	if node.Tag == "!!null" {
		return nil, nil
	}
	r := &Resources{}
	if err := decodeMapping(path, key, node, map[string]any{"memory": &r.Memory, "cpu": &r.CPU}); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeMapping decodes each known key of node into its field, so an error
// names the key and its line. Unknown keys are ignored, as faas-cli's
// non-strict decoding does.
func decodeMapping(path, prefix string, node *yaml.Node, fields map[string]any) error {
	if node.Kind != yaml.MappingNode {
		if node.Tag == "!!null" {
			return nil
		}
		return &Error{Path: path, Line: node.Line, Key: prefix, Msg: "want a mapping"}
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		ptr, ok := fields[k.Value]
		if !ok {
			continue
		}
		if err := v.Decode(ptr); err != nil {
			msg := err.Error()
			var te *yaml.TypeError
			if errors.As(err, &te) && len(te.Errors) > 0 {
				msg = lineRE.ReplaceAllString(te.Errors[0], "")
				msg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(msg, ":")), ": ")
			}
			return &Error{Path: path, Line: v.Line, Key: prefix + "." + k.Value, Msg: msg}
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
