package packs

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/golang"
	"github.com/kiln-build/kiln/languages/java"
	"github.com/kiln-build/kiln/languages/node"
	"github.com/kiln-build/kiln/languages/python"
)

// entry is one pack of the registry: the langs it declares, and how to
// make it from the registry's options.
type entry struct {
	langs func() []languages.Lang
	make  func(o options) (languages.Pack, error)
}

// registry lists the packs in the order their langs are listed.
func registry() []entry {
	return []entry{
		{golang.Langs, func(o options) (languages.Pack, error) {
			return pack(golang.New(golang.WithEnv(o.env)))
		}},
		{node.Langs, func(o options) (languages.Pack, error) {
			return pack(node.New(node.WithEnv(o.env), node.WithCacheDir(o.cacheDir), node.WithRegistry(o.npmRegistry)))
		}},
		{python.Langs, func(o options) (languages.Pack, error) {
			return pack(python.New(python.WithEnv(o.env), python.WithDebian(o.debian)))
		}},
		{java.Langs, func(o options) (languages.Pack, error) {
			return pack(java.New(java.WithEnv(o.env), java.WithCacheDir(o.cacheDir), java.WithDebian(o.debian), java.WithGradle(o.gradle)))
		}},
	}
}

// pack turns a pack constructor's answer into a languages.Pack, nil on
// error.
func pack[P languages.Pack](p P, err error) (languages.Pack, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Option configures the packs New makes.
type Option func(*options) error

type options struct {
	env         []string
	cacheDir    string
	debian      languages.Debian
	gradle      string
	npmRegistry string
}

// WithEnv sets the environment the packs' tools run in (go, npm, pip,
// javac, Maven, Gradle). The default is empty, so the CLI passes
// os.Environ().
func WithEnv(env []string) Option { return func(o *options) error { o.env = env; return nil } }

// WithCacheDir sets kiln's cache folder, under which the packs keep what
// they reuse between builds (java/, node/). Required.
func WithCacheDir(dir string) Option {
	return func(o *options) error { o.cacheDir = dir; return nil }
}

// WithDebian sets what the packs read of Debian: the runtime bases'
// packages (runtime-images/bases.Source). The default is none: Java
// cannot link runtimes for another platform, and Python functions compile
// their standard library at every start.
func WithDebian(d languages.Debian) Option {
	return func(o *options) error { o.debian = d; return nil }
}

// WithGradle sets the Java pack's Gradle (java.WithGradle). The default,
// also used when gradle is empty, is the Java pack's.
func WithGradle(gradle string) Option {
	return func(o *options) error { o.gradle = gradle; return nil }
}

// WithNpmRegistry sets the npm registry the Node pack downloads runtimes
// from (node.WithRegistry). The default, also used when url is empty, is
// node.DefaultRegistry.
func WithNpmRegistry(url string) Option {
	return func(o *options) error { o.npmRegistry = url; return nil }
}

// New makes every pack kiln has, in the registry's order, for the
// builder's WithPack.
func New(opts ...Option) ([]languages.Pack, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring the language packs: %w", err)
		}
	}
	if o.cacheDir == "" {
		return nil, errors.New("configuring the language packs: no cache folder (WithCacheDir)")
	}
	var out []languages.Pack
	for _, e := range registry() {
		p, err := e.make(o)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Langs returns the langs every pack declares, in the registry's order
// (Go, Node, Python, Java), each pack's in its own.
func Langs() []languages.Lang {
	var out []languages.Lang
	for _, e := range registry() {
		out = append(out, e.langs()...)
	}
	return out
}

// Lookup returns the lang called name.
func Lookup(name string) (languages.Lang, bool) {
	langs := Langs()
	i := slices.IndexFunc(langs, func(l languages.Lang) bool { return l.Name == name })
	if i < 0 {
		return languages.Lang{}, false
	}
	return langs[i], true
}

// FProcess returns the command kiln's images start for lang, for deploy to
// send when nothing else says; false when no pack knows a fixed one.
func FProcess(lang string) (string, bool) {
	l, ok := Lookup(lang)
	if !ok || l.FProcess == "" {
		return "", false
	}
	return l.FProcess, true
}

// Listed returns the names of the listed langs, in the registry's order.
func Listed() []string {
	var out []string
	for _, l := range Langs() {
		if l.Listed {
			out = append(out, l.Name)
		}
	}
	return out
}

// Scaffolds returns the names of the langs `kiln new` has templates for,
// sorted.
func Scaffolds() []string {
	var out []string
	for _, l := range Langs() {
		if l.Scaffold != nil {
			out = append(out, l.Name)
		}
	}
	slices.Sort(out)
	return out
}
