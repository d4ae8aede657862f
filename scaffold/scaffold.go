package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/stack"
)

// Data is what the templates see.
type Data struct {
	// Name is the function's name.
	Name string
}

// Langs lists the languages with a scaffold, sorted.
func Langs() []string { return packs.Scaffolds() }

// Function writes the handler folder dir for a function called name in
// lang, from the templates lang's pack carries. dir must not exist yet.
func Function(dir, name, lang string) error {
	if !stack.DNSLabel.MatchString(name) || len(name) > 63 {
		return fmt.Errorf("function name %q: want lowercase letters, digits and '-', at most 63 characters", name)
	}
	l, ok := packs.Lookup(lang)
	if !ok || l.Scaffold == nil {
		return fmt.Errorf("no scaffold for lang %q; kiln has them for: %s", lang, strings.Join(Langs(), ", "))
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s already exists", dir)
	}
	data := Data{Name: name}
	return fs.WalkDir(l.Scaffold, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimSuffix(p, ".tmpl")
		src, err := fs.ReadFile(l.Scaffold, p)
		if err != nil {
			return err
		}
		t, err := template.New(rel).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("scaffold %s of %s: %w", p, lang, err)
		}
		var out bytes.Buffer
		if err := t.Execute(&out, data); err != nil {
			return fmt.Errorf("scaffold %s of %s: %w", p, lang, err)
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, out.Bytes(), 0o644)
	})
}

// Entry is a function's entry in a stack file.
type Entry struct {
	Name, Lang, Handler, Image string
}

// AddToStack adds e under functions in the stack file at path, creating
// the file when it does not exist. The rest of an existing file, comments
// included, is kept.
func AddToStack(path string, e Entry, gateway string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = []byte(fmt.Sprintf("version: 1.0\nprovider:\n  name: openfaas\n  gateway: %s\nfunctions:\n", gateway))
	} else if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s is not a stack file", path)
	}
	root := doc.Content[0]
	var fns *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "functions" {
			fns = root.Content[i+1]
		}
	}
	if fns == nil {
		fns = &yaml.Node{Kind: yaml.MappingNode}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "functions"}, fns)
	}
	if fns.Kind != yaml.MappingNode {
		// "functions:" with nothing after it reads as null.
		*fns = yaml.Node{Kind: yaml.MappingNode}
	}
	for i := 0; i+1 < len(fns.Content); i += 2 {
		if fns.Content[i].Value == e.Name {
			return fmt.Errorf("%s already has a function called %s", path, e.Name)
		}
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
	fns.Style = 0
	fns.Content = append(fns.Content, str(e.Name), &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		str("lang"), str(e.Lang), str("handler"), str(e.Handler), str("image"), str(e.Image),
	}})
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// Options are what `kiln new` is told besides the name.
type Options struct {
	Lang string
	// Prefix is the image's registry and owner, e.g. ghcr.io/me.
	Prefix string
	// StackFile is the stack file to add the function to; "" finds one
	// (stack.yaml, then stack.yml) or makes stack.yaml.
	StackFile string
	// Gateway is written into a new stack file.
	Gateway string
}

// New writes the handler folder ./name and adds name to the stack file, as
// faas-cli new does, and returns that file's path.
func New(name string, o Options) (string, error) {
	if o.Lang == "" {
		return "", usage.Errorf("--lang is required: one of %s", strings.Join(Langs(), ", "))
	}
	path := o.StackFile
	if path == "" {
		path = "stack.yaml"
		if p, err := stack.Find(""); err == nil {
			path = p
		}
	}
	image := name + ":latest"
	if o.Prefix != "" {
		image = strings.TrimSuffix(o.Prefix, "/") + "/" + image
	}
	if err := Function(name, name, o.Lang); err != nil {
		return "", err
	}
	return path, AddToStack(path, Entry{Name: name, Lang: o.Lang, Handler: "./" + name, Image: image}, o.Gateway)
}
