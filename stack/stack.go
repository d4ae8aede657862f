package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"slices"
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
	// Warnings are what kiln doubts but accepts, such as unknown keys, in
	// the order of the file; the caller shows them.
	Warnings []Warning `json:",omitempty"`
	// functionsLine is where the functions key stands, 0 when absent.
	functionsLine int
	// imageErrs are the functions whose image is not a valid reference:
	// an error only when they are selected, as faas-cli reads the image
	// only of the functions it works on.
	imageErrs map[string]error
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
// URL. A file, or an answer, over MaxSize is refused with ErrTooLarge
// before it is read whole.
func Read(ctx context.Context, path string, opts ...Option) (*File, error) {
	o := newOptions(opts)
	var b []byte
	var err error
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		b, err = fetch(ctx, o.client, path)
	} else {
		b, err = readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stack file %s not found", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(path, b, opts...)
}

// DNSLabel is the DNS-1123 label rule faas-cli and faas-netes enforce on
// function names (at most 63 characters, which callers check), and
// Kubernetes on secret names.
var DNSLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// lineRE finds the line number yaml.v3 puts in its messages.
var lineRE = regexp.MustCompile(`line (\d+)`)

// Parse substitutes the environment into data, then checks and decodes
// it; path is used in errors and warnings. YAML anchors, aliases and
// merge keys (<<: *defaults) are resolved as yaml.v3, which faas-cli uses,
// resolves them. Data over MaxSize, or with more YAML than parses within
// 100 MB, is refused (ErrTooLarge, ErrTooComplex).
func Parse(path string, data []byte, opts ...Option) (*File, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %w", path, ErrTooLarge)
	}
	if n := countItems(data); n > maxItems {
		return nil, fmt.Errorf("%s: %w: %d YAML items or ${VAR}s (bytes of \",[{-:?*$\"), at most %d", path, ErrTooComplex, n, maxItems)
	}
	o := newOptions(opts)
	p := &parser{path: path, budget: maxExpanded, pairs: map[*yaml.Node][]pair{}, weights: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}, warned: map[Warning]bool{}}
	src := data
	if o.envsubst && bytes.IndexByte(data, '$') >= 0 {
		unset := map[string]bool{}
		text, err := envsubst.Eval(string(data), func(k string) string {
			v := o.getenv(k)
			if v == "" {
				unset[k] = true
			}
			return v
		})
		if err != nil {
			return nil, &Error{Path: path, Line: substLine(data), Msg: "substituting environment variables: " + err.Error()}
		}
		if len(text) > MaxSize {
			return nil, fmt.Errorf("%s: after substituting ${VAR}s: %w", path, ErrTooLarge)
		}
		src, p.raw, p.unset = []byte(text), data, unset
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
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
	f := &File{Path: path, Functions: map[string]Function{}}
	top, err := p.mapping("", doc.Content[0])
	if err != nil {
		return nil, err
	}
	var providerLine int
	for _, kv := range top {
		key, val := kv.k, deref(kv.v)
		switch key.Value {
		case "version":
			f.Version = val.Value
			if f.Version != "" && f.Version != "1.0" {
				return nil, &Error{Path: path, Line: val.Line, Key: "version", Msg: fmt.Sprintf("%q is not supported; the only stack version is 1.0", f.Version)}
			}
		case "provider":
			providerLine = key.Line
			if _, err := p.decodeMapping("provider", val, fields(map[string]any{"name": &f.Provider.Name, "gateway": &f.Provider.Gateway}), providerKeys); err != nil {
				return nil, err
			}
		case "configuration":
			ps, err := p.decodeMapping("configuration", val, fields(map[string]any{"templates": &f.Configuration.Templates, "copy": &f.Configuration.Copy}), configKeys)
			if err != nil {
				return nil, err
			}
			if err := p.configuration(f, ps); err != nil {
				return nil, err
			}
		case "functions":
			f.functionsLine = key.Line
			if err := p.parseFunctions(f, val); err != nil {
				return nil, err
			}
		default:
			p.unknown("", key, topKeys)
		}
	}
	if f.Provider.Name != "openfaas" {
		line := providerLine
		if line == 0 {
			line = 1
		}
		return nil, &Error{Path: path, Line: line, Key: "provider.name", Msg: fmt.Sprintf("must be openfaas, got %q", f.Provider.Name)}
	}
	f.Warnings = p.warnings
	return f, nil
}

// substLine finds the first line where envsubst would choke: a ${ without
// its closing brace or with an unsupported operator.
func substLine(data []byte) int {
	re := regexp.MustCompile(`\$\{[^}]*\}?`)
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range re.FindAllString(line, -1) {
			if _, err := envsubst.Eval(m, func(string) string { return "" }); err != nil {
				return i + 1
			}
		}
	}
	return 1
}

// parser holds what one Parse learns on its way: warnings, and the
// expansion of anchors, which is memoised and bounded.
type parser struct {
	path string
	// raw and unset, when ${VAR}s were substituted, are the text before
	// substitution and the variables found unset or empty, for errors.
	raw   []byte
	unset map[string]bool
	// budget is how many more entries and values anchors may expand to.
	budget   int
	pairs    map[*yaml.Node][]pair
	weights  map[*yaml.Node]int
	open     map[*yaml.Node]bool
	warnings []Warning
	warned   map[Warning]bool
}

// pair is a key and its value in a mapping.
type pair struct{ k, v *yaml.Node }

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && n.ShortTag() == "!!merge"
}

func (p *parser) spend(n int, line int) error {
	p.budget -= n
	if p.budget < 0 {
		return fmt.Errorf("%s:%d: %w: anchors expand to over %d entries", p.path, line, ErrTooComplex, maxExpanded)
	}
	return nil
}

// mapping returns the entries of a mapping node with its merge keys
// resolved as yaml.v3 does: the mapping's own keys win, then each merged
// mapping in order, the first one naming a key winning.
func (p *parser) mapping(prefix string, n *yaml.Node) ([]pair, error) {
	n = deref(n)
	if ps, ok := p.pairs[n]; ok {
		return ps, p.spend(len(ps), n.Line)
	}
	if p.open[n] {
		return nil, &Error{Path: p.path, Line: n.Line, Key: prefix, Msg: "an anchor merges itself"}
	}
	p.open[n] = true
	defer delete(p.open, n)
	var out, merged []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			m := deref(v)
			from := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				from = m.Content
			}
			for _, src := range from {
				if deref(src).Kind != yaml.MappingNode {
					return nil, &Error{Path: p.path, Line: v.Line, Key: joinKey(prefix, "<<"), Msg: "merge keys take a mapping (an alias of one) or a list of them"}
				}
				ps, err := p.mapping(prefix, src)
				if err != nil {
					return nil, err
				}
				merged = append(merged, ps...)
			}
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{k, v})
	}
	for _, kv := range merged {
		if !seen[kv.k.Value] {
			seen[kv.k.Value] = true
			out = append(out, kv)
		}
	}
	p.pairs[n] = out
	return out, p.spend(len(out), n.Line)
}

// weight counts the nodes a value decodes to, aliases expanded.
func (p *parser) weight(n *yaml.Node) (int, error) {
	if w, ok := p.weights[n]; ok {
		return w, nil
	}
	if p.open[n] {
		return 0, &Error{Path: p.path, Line: n.Line, Msg: "an anchor contains itself"}
	}
	p.open[n] = true
	defer delete(p.open, n)
	w := 1
	if n.Alias != nil {
		a, err := p.weight(n.Alias)
		if err != nil {
			return 0, err
		}
		w += a
	}
	for _, c := range n.Content {
		cw, err := p.weight(c)
		if err != nil {
			return 0, err
		}
		if w += cw; w > maxExpanded {
			break
		}
	}
	p.weights[n] = w
	return w, nil
}

func (p *parser) unknown(prefix string, k *yaml.Node, known []string) {
	w, ok := unknownKey(p.path, prefix, k.Line, k.Value, known)
	if ok && !p.warned[w] {
		p.warned[w] = true
		p.warnings = append(p.warnings, w)
	}
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// configuration checks the configuration's templates for unknown keys and
// keeps the lines of its copy entries.
func (p *parser) configuration(f *File, ps []pair) error {
	for _, kv := range ps {
		v := deref(kv.v)
		switch kv.k.Value {
		case "copy":
			for _, item := range v.Content {
				f.Configuration.copyLines = append(f.Configuration.copyLines, item.Line)
			}
		case "templates":
			for _, item := range v.Content {
				if deref(item).Kind != yaml.MappingNode {
					continue
				}
				tps, err := p.mapping("configuration.templates", item)
				if err != nil {
					return err
				}
				for _, t := range tps {
					p.unknown("configuration.templates", t.k, templateKeys)
				}
			}
		}
	}
	return nil
}

func (p *parser) parseFunctions(f *File, val *yaml.Node) error {
	if val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null" {
		// faas-cli reads an empty functions key as no functions.
		return nil
	}
	if val.Kind != yaml.MappingNode {
		return &Error{Path: f.Path, Line: val.Line, Key: "functions", Msg: "want a mapping of function names"}
	}
	fns, err := p.mapping("functions", val)
	if err != nil {
		return err
	}
	f.Functions = make(map[string]Function, len(fns))
	for _, kv := range fns {
		nameNode, fnNode := kv.k, deref(kv.v)
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
		ps, err := p.decodeMapping(key, fnNode, fn.field, functionKeys)
		if err != nil {
			return err
		}
		for _, kv := range ps {
			k, v := kv.k, deref(kv.v)
			fn.Lines[k.Value] = k.Line
			if k.Value != "limits" && k.Value != "requests" {
				continue
			}
			// Decoded key by key, so that an error, and a later check of a
			// quantity, can name limits.memory and its line.
			r, rps, err := p.decodeResources(key+"."+k.Value, v)
			if err != nil {
				return err
			}
			if k.Value == "limits" {
				fn.Limits = r
			} else {
				fn.Requests = r
			}
			for _, rkv := range rps {
				fn.Lines[k.Value+"."+rkv.k.Value] = rkv.k.Line
			}
		}
		if fn.Image == "" {
			return f.FuncError(fn, "image", "missing")
		}
		if err := CheckImage(fn.Image); err != nil {
			if f.imageErrs == nil {
				f.imageErrs = map[string]error{}
			}
			f.imageErrs[fn.Name] = f.FuncError(fn, "image", "%v%s", err, p.imageHint(fn.Image, fn.KeyLine("image")))
		}
		f.Functions[fn.Name] = fn
	}
	return nil
}

// imageHint names the ${VAR}s of line (before substitution) that were
// unset or empty, for an error about the image they left, or says that
// ${VAR}s were left as written.
func (p *parser) imageHint(image string, line int) string {
	if p.raw == nil {
		if strings.Contains(image, "${") {
			return "; with --envsubst=false, ${VAR} is left as written"
		}
		return ""
	}
	lines := bytes.SplitN(p.raw, []byte("\n"), line+1)
	if line < 1 || line > len(lines) {
		return ""
	}
	var names []string
	for _, m := range varRE.FindAllStringSubmatch(string(lines[line-1]), -1) {
		if p.unset[m[1]] && !slices.Contains(names, "${"+m[1]+"}") {
			names = append(names, "${"+m[1]+"}")
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return "; " + names[0] + " is unset or empty"
	}
	return "; " + strings.Join(names, ", ") + " are unset or empty"
}

// varRE finds the names in ${NAME...} forms.
var varRE = regexp.MustCompile(`\$\{#?([A-Za-z_][A-Za-z0-9_]*)`)

// fields looks keys up in m, for decodeMapping.
func fields(m map[string]any) func(string) any {
	return func(k string) any { return m[k] }
}

// field returns a pointer to the field that key decodes into, nil for
// an unknown key.
func (fn *Function) field(key string) any {
	switch key {
	case "lang":
		return &fn.Lang
	case "handler":
		return &fn.Handler
	case "image":
		return &fn.Image
	case "fprocess":
		return &fn.FProcess
	case "environment":
		return &fn.Environment
	case "environment_file":
		return &fn.EnvironmentFile
	case "secrets":
		return &fn.Secrets
	case "skip_build":
		return &fn.SkipBuild
	case "constraints":
		return &fn.Constraints
	case "labels":
		return &fn.Labels
	case "annotations":
		return &fn.Annotations
	case "readonly_root_filesystem":
		return &fn.ReadOnlyRootFilesystem
	case "build_options":
		return &fn.BuildOptions
	case "namespace":
		return &fn.Namespace
	case "build_args":
		return &fn.BuildArgs
	case "platforms":
		return &fn.Platforms
	case "build_secrets":
		return &fn.BuildSecrets
	case "limits", "requests":
		// Decoded key by key by the caller.
		return nil
	}
	return nil
}

// decodeResources decodes a limits or requests entry; null is absent.
func (p *parser) decodeResources(key string, node *yaml.Node) (*Resources, []pair, error) {
	if node.Tag == "!!null" {
		return nil, nil, nil
	}
	r := &Resources{}
	ps, err := p.decodeMapping(key, node, fields(map[string]any{"memory": &r.Memory, "cpu": &r.CPU}), resourceKeys)
	if err != nil {
		return nil, nil, err
	}
	return r, ps, nil
}

// decodeMapping decodes each key of node that field knows (it returns a
// pointer to decode into, or nil) into its field, so an error
// names the key and its line, and returns the mapping's entries. Unknown
// keys are ignored, as faas-cli's non-strict decoding does, with a warning
// naming the nearest of known.
func (p *parser) decodeMapping(prefix string, node *yaml.Node, field func(key string) any, known []string) ([]pair, error) {
	node = deref(node)
	if node.Kind != yaml.MappingNode {
		if node.Tag == "!!null" {
			return nil, nil
		}
		return nil, &Error{Path: p.path, Line: node.Line, Key: prefix, Msg: "want a mapping"}
	}
	ps, err := p.mapping(prefix, node)
	if err != nil {
		return nil, err
	}
	for _, kv := range ps {
		k, v := kv.k, kv.v
		ptr := field(k.Value)
		if ptr == nil {
			p.unknown(prefix, k, known)
			continue
		}
		w, err := p.weight(v)
		if err != nil {
			return nil, err
		}
		if err := p.spend(w, v.Line); err != nil {
			return nil, err
		}
		if err := v.Decode(ptr); err != nil {
			msg := err.Error()
			var te *yaml.TypeError
			if errors.As(err, &te) && len(te.Errors) > 0 {
				msg = lineRE.ReplaceAllString(te.Errors[0], "")
				msg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(msg, ":")), ": ")
			}
			return nil, &Error{Path: p.path, Line: v.Line, Key: prefix + "." + k.Value, Msg: msg}
		}
	}
	return ps, nil
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
