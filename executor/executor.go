package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
	"github.com/kiln-build/kiln/run"
)

// Build is one build: a context folder, what it is built as, and where
// the image goes. The executor and the builder API both run one.
type Build struct {
	// Dir is the context folder.
	Dir string
	// Lang builds Dir with kiln's language pack for it.
	Lang string
	// Stack is a stack file whose function is built, when Lang is empty;
	// with neither, Dir is a Dockerfile context.
	Stack string
	// Function is the function's name (the com.openfaas.function
	// label), and picks the stack function to build; default the first
	// destination's last path segment.
	Function string
	// Dockerfile is the Dockerfile of a Dockerfile context; default Dir's.
	Dockerfile string
	// Stage is the Dockerfile stage built; default the last.
	Stage string
	// Destinations are the references the image is published under;
	// pushed unless NoPush.
	Destinations []string
	NoPush       bool
	// TarPath and OCILayoutPath also write the image there.
	TarPath, OCILayoutPath string
	// Annotations are set on the image's manifest.
	Annotations map[string]string
	// Secrets are build secrets, id to file, that Dockerfile RUN
	// --mount=type=secret steps read.
	Secrets map[string]string
}

// Result is a build's image and where it went.
type Result struct {
	Digest v1.Hash
	// Refs are the destinations, parsed, in order.
	Refs []name.Reference
	// Lang is what the context was built as: a pack's name, or
	// "dockerfile".
	Lang string
}

// NameDigests returns NAME@DIGEST of each destination.
func (r *Result) NameDigests() []string {
	var out []string
	for _, ref := range r.Refs {
		out = append(out, ref.Context().Name()+"@"+r.Digest.String())
	}
	return out
}

// stackFiles are the names of a stack file in a context, by preference.
var stackFiles = []string{"stack.yaml", "stack.yml"}

// placeholder names the image of a --no-push build without destination.
const placeholder = "kiln.local/executor/image:latest"

// RunNeeds says what a pod must allow for a Dockerfile RUN (doc.go says
// why).
const RunNeeds = "in a pod, a Dockerfile RUN needs hostUsers: false, runAsUser: 0, procMount: Unmasked, and seccomp and AppArmor Unconfined; language builds need none of it"

// Run builds b with p and publishes the image as b says; s gives the
// platform, the epoch, the build arguments and the insecure registries.
// Nothing is pushed unless the build succeeded, and the image goes to
// the tarball and the layout before any registry.
func (b Build) Run(ctx context.Context, p *project.Project, s project.BuildSettings) (*Result, error) {
	refs, err := b.refs(s.Insecure)
	if err != nil {
		return nil, err
	}
	t, err := b.target(ctx, p, s)
	if err != nil {
		return nil, err
	}
	t.Ref, t.Image = refs[0], refs[0].String()
	if len(b.Secrets) > 0 {
		t.Secrets = b.Secrets
	}
	out := project.Output{Publisher: &tee{b: b, refs: refs, registry: p.Registry().Publisher}, Name: "registry"}
	if b.NoPush {
		out.Name = "executor"
	}
	res, err := p.BuildOne(ctx, t, out)
	var denied *run.SandboxDeniedError
	if errors.As(err, &denied) {
		// Where kaniko's manifests run, the sandbox's cause alone does
		// not say what to change.
		return nil, fmt.Errorf("%w (%s)", err, RunNeeds)
	}
	if err != nil {
		return nil, err
	}
	d, err := v1.NewHash(res.Digest)
	if err != nil {
		return nil, err
	}
	if b.NoPush && len(b.Destinations) == 0 {
		refs = nil
	}
	return &Result{Digest: d, Refs: refs, Lang: t.Function.Lang}, nil
}

func (b Build) refs(insecure []string) ([]name.Reference, error) {
	dests := b.Destinations
	if len(dests) == 0 {
		dests = []string{placeholder}
	}
	var refs []name.Reference
	for _, d := range dests {
		ref, err := project.ParseImage("--destination", d, insecure)
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// target is what b builds: a lang's pack, a stack function, or the
// Dockerfile.
func (b Build) target(ctx context.Context, p *project.Project, s project.BuildSettings) (project.Target, error) {
	fnName := b.Function
	if fnName == "" {
		dest := placeholder
		if len(b.Destinations) > 0 {
			dest = b.Destinations[0]
		}
		if ref, err := name.ParseReference(dest); err == nil {
			fnName = filepath.Base(ref.Context().RepositoryStr())
		}
	}
	if b.Lang != "" {
		ts, err := p.Targets(ctx, project.Selection{}, &project.Dir{Path: b.Dir, Lang: b.Lang, Image: placeholder, Name: fnName}, s)
		if err != nil {
			return project.Target{}, err
		}
		return ts[0], nil
	}
	if b.Stack != "" {
		return b.stackTarget(ctx, p, s, b.Stack)
	}
	df, err := b.dockerfile()
	if err != nil {
		return project.Target{}, err
	}
	t, err := project.DirTarget(project.Dir{Path: b.Dir, Lang: project.LangDockerfile, Image: placeholder, Name: fnName}, s)
	if err != nil {
		return project.Target{}, err
	}
	t.Dockerfile, t.Stage = df, b.Stage
	return t, nil
}

// StackFile is the stack file of the context dir: stack.yaml, else
// stack.yml, else "".
func StackFile(dir string) string {
	for _, n := range stackFiles {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return filepath.Join(dir, n)
		}
	}
	return ""
}

// stackTarget is the context's stack function: the only one, or the one
// b.Function names. A stack file's paths (handler, configuration.copy,
// ./template) are relative to the working folder, as in faas-cli, so the
// executor, which runs one build per process, goes into the context.
func (b Build) stackTarget(ctx context.Context, p *project.Project, s project.BuildSettings, file string) (project.Target, error) {
	if err := os.Chdir(b.Dir); err != nil {
		return project.Target{}, err
	}
	sel := project.Selection{File: file, Filter: b.Function, Tag: "latest", Envsubst: true}
	ts, err := p.Targets(ctx, sel, nil, s)
	if err != nil {
		return project.Target{}, err
	}
	if len(ts) != 1 {
		var names []string
		for _, t := range ts {
			names = append(names, t.Function.Name)
		}
		return project.Target{}, usage.Errorf("%s has %d functions to build (%s): name one with --function", filepath.Base(file), len(ts), strings.Join(names, ", "))
	}
	return ts[0], nil
}

// dockerfile finds -f as kaniko does: as given (absolute, or from the
// working folder), else in the context.
func (b Build) dockerfile() (string, error) {
	df := b.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	for _, p := range []string{df, filepath.Join(b.Dir, df)} {
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return filepath.Abs(p)
		}
	}
	return "", usage.Errorf("--dockerfile %s: not found in the context %s (nor a stack.yml, nor --lang)", df, b.Dir)
}

// CacheDir is the executor's kiln cache: $KILN_CACHE_DIR, else kiln's
// default when it can be made, else $TMPDIR/kiln-cache, so that a pod
// with a read-only root and a writable /tmp builds. kaniko's --cache-dir
// (a read-only base-image cache) is not it.
func CacheDir(getenv func(string) string) string {
	if d, err := cache.DefaultDir(getenv); err == nil {
		if err := os.MkdirAll(d, 0o755); err == nil && writable(d) {
			return d
		}
	}
	return filepath.Join(os.TempDir(), "kiln-cache")
}
