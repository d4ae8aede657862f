package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/stack"
)

// Resources mirrors faas-provider's FunctionResources.
type Resources struct {
	Memory string `json:"memory,omitempty"`
	CPU    string `json:"cpu,omitempty"`
}

// Deployment is the gateway's FunctionDeployment body, with faas-provider's
// JSON names and omissions.
type Deployment struct {
	Service                string             `json:"service"`
	Image                  string             `json:"image"`
	Namespace              string             `json:"namespace,omitempty"`
	EnvProcess             string             `json:"envProcess,omitempty"`
	EnvVars                map[string]string  `json:"envVars,omitempty"`
	Constraints            []string           `json:"constraints,omitempty"`
	Secrets                []string           `json:"secrets,omitempty"`
	Labels                 *map[string]string `json:"labels,omitempty"`
	Annotations            *map[string]string `json:"annotations,omitempty"`
	Limits                 *Resources         `json:"limits,omitempty"`
	Requests               *Resources         `json:"requests,omitempty"`
	ReadOnlyRootFilesystem bool               `json:"readOnlyRootFilesystem,omitempty"`
	// Network is deprecated and ignored by providers; faas-cli still
	// sends --network.
	Network string `json:"network,omitempty"`
}

// Overrides are deploy's command-line flags, applied over the stack file.
type Overrides struct {
	Env         map[string]string // -e/--env: win over environment and environment_file
	Labels      map[string]string // --label: win over labels
	Annotations map[string]string // --annotation: win over annotations
	Secrets     []string          // --secret: added to secrets
	Constraints []string          // --constraint: used only when the stack has no constraints key
	Namespace   string            // -n/--namespace: wins over namespace
	FProcess    string            // --fprocess: wins over everything
	ReadOnly    bool              // --readonly: forces readOnlyRootFilesystem
	Network     string            // --network: sent, ignored by providers
}

// ErrNoFProcess is FProcess finding no fprocess where one is needed.
var ErrNoFProcess = errors.New("no fprocess")

// FProcess works out envProcess as faas-cli does, with one kiln step: the
// stack's fprocess; else imageFProcess, the fprocess the built image's own
// config sets (a kiln image lays out its runtime its own way, so a
// template's command may not fit it); else the fprocess of
// ./template/<lang>/template.yml, unless templateDir is "" (faas-cli's
// --read-template=false); else defaults(lang), the command kiln's own
// images start for the lang (languages/packs.FProcess; nil for none). A
// dockerfile function with none of these sends none.
func FProcess(fn stack.Function, imageFProcess, templateDir string, defaults func(lang string) (string, bool)) (string, error) {
	if defaults == nil {
		defaults = func(string) (string, bool) { return "", false }
	}
	if fn.FProcess != "" {
		return fn.FProcess, nil
	}
	if imageFProcess != "" {
		return imageFProcess, nil
	}
	if strings.EqualFold(fn.Lang, "dockerfile") || fn.Lang == "" {
		return "", nil
	}
	if templateDir == "" {
		fp, _ := defaults(fn.Lang)
		return fp, nil
	}
	path := filepath.Join(templateDir, fn.Lang, "template.yml")
	b, err := os.ReadFile(path)
	if err == nil {
		var t struct {
			FProcess string `yaml:"fprocess"`
		}
		if err := yaml.Unmarshal(b, &t); err != nil {
			return "", fmt.Errorf("reading %s: %w", path, err)
		}
		return t.FProcess, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if fp, ok := defaults(fn.Lang); ok {
		return fp, nil
	}
	return "", fmt.Errorf("%w for lang %s: set fprocess in the stack file, or add ./template/%s/template.yml", ErrNoFProcess, fn.Lang, fn.Lang)
}

// Environment merges the function's environment in faas-cli's order:
// environment < each environment_file in list order < flags.
func Environment(sf *stack.File, fn stack.Function, flags map[string]string) (map[string]string, error) {
	env := maps.Clone(fn.Environment)
	if env == nil {
		env = map[string]string{}
	}
	for _, p := range fn.EnvironmentFile {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, sf.FuncError(fn, "environment_file", "%v", err)
		}
		var doc struct {
			Environment map[string]string `yaml:"environment"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s (environment_file of %s): %w", p, fn.Name, err)
		}
		maps.Copy(env, doc.Environment)
	}
	maps.Copy(env, flags)
	return env, nil
}

// NewDeployment builds the body faas-cli deploy would send for fn, with
// image (by digest, for kiln) and envProcess already worked out.
func NewDeployment(sf *stack.File, fn stack.Function, image, envProcess string, o Overrides) (*Deployment, error) {
	env, err := Environment(sf, fn, o.Env)
	if err != nil {
		return nil, err
	}
	d := &Deployment{
		Service:                fn.Name,
		Image:                  image,
		Namespace:              fn.Namespace,
		EnvProcess:             envProcess,
		EnvVars:                env,
		ReadOnlyRootFilesystem: fn.ReadOnlyRootFilesystem || o.ReadOnly,
		Network:                o.Network,
	}
	if o.Namespace != "" {
		d.Namespace = o.Namespace
	}
	if o.FProcess != "" {
		d.EnvProcess = o.FProcess
	}
	for _, s := range append(slices.Clone(fn.Secrets), o.Secrets...) {
		if !slices.Contains(d.Secrets, s) {
			d.Secrets = append(d.Secrets, s)
		}
	}
	if fn.Constraints != nil {
		d.Constraints = *fn.Constraints
	} else {
		d.Constraints = o.Constraints
	}
	// faas-cli always sends labels and annotations, {} at least.
	labels, annotations := map[string]string{}, map[string]string{}
	if fn.Labels != nil {
		maps.Copy(labels, *fn.Labels)
	}
	if fn.Annotations != nil {
		maps.Copy(annotations, *fn.Annotations)
	}
	maps.Copy(labels, o.Labels)
	maps.Copy(annotations, o.Annotations)
	d.Labels, d.Annotations = &labels, &annotations
	d.Limits, d.Requests = resources(fn.Limits), resources(fn.Requests)
	return d, nil
}

// resources drops an entry whose fields are all empty, as faas-cli does.
func resources(r *stack.Resources) *Resources {
	if r == nil || (r.Memory == "" && r.CPU == "") {
		return nil
	}
	return &Resources{Memory: r.Memory, CPU: r.CPU}
}
