package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// templateManifest is the part of faas-cli's template.yml that build
// options read.
type templateManifest struct {
	BuildOptions []buildOption `yaml:"build_options"`
}

type buildOption struct {
	Name     string   `yaml:"name"`
	Packages []string `yaml:"packages"`
}

// BuildOptionPackages returns the packages that the named build_options
// stand for, as ./template/<lang>/template.yml under root defines them,
// the way faas-cli looks them up. An unknown option is an error.
func BuildOptionPackages(root, lang string, options []string) ([]string, error) {
	if len(options) == 0 {
		return nil, nil
	}
	path := filepath.Join(root, "template", lang, "template.yml")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("build_options %s: no %s defines them", strings.Join(options, ", "), path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var m templateManifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []string
	for _, opt := range options {
		i := slices.IndexFunc(m.BuildOptions, func(o buildOption) bool { return o.Name == opt })
		if i < 0 {
			return nil, fmt.Errorf("build_options: %q is not defined in %s", opt, path)
		}
		out = append(out, m.BuildOptions[i].Packages...)
	}
	return out, nil
}

// AdditionalPackages merges package lists as faas-cli builds
// ADDITIONAL_PACKAGE: every list split on spaces, deduplicated, sorted.
func AdditionalPackages(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			out = append(out, strings.Fields(s)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
