package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
)

// Run runs the executor as kaniko's command line f asks: it fetches the
// context, builds it, publishes the image and writes the digest files.
// opts are the project options of the caller (progress, version); the
// flags add theirs, and the tools' environment is env.Environ with their
// caches made writable (ToolEnv).
func Run(ctx context.Context, f *Flags, env Env, opts ...project.Option) (*Result, error) {
	settings, popts, err := f.settings(env.Getenv)
	if err != nil {
		return nil, err
	}
	ws, err := resolveContext(ctx, f, env, settings.Insecure, popts.tls.transport())
	if err != nil {
		return nil, err
	}
	defer ws.Close()
	annotations, err := project.ParseKeyValues("--annotation", f.Annotations)
	if err != nil {
		return nil, err
	}
	dockerfile := f.Dockerfile
	if strings.HasPrefix(dockerfile, "http://") || strings.HasPrefix(dockerfile, "https://") {
		df, err := fetchDockerfile(ctx, dockerfile, env)
		if err != nil {
			return nil, err
		}
		defer df.Close()
		dockerfile = filepath.Join(df.Dir, "Dockerfile")
	}
	b := Build{
		Dir: ws.Dir, Lang: f.Lang, Stack: StackFile(ws.Dir), Function: f.Function, Dockerfile: dockerfile, Stage: f.Target,
		Destinations: f.Destinations, NoPush: f.NoPush, TarPath: f.TarPath, OCILayoutPath: f.OCILayoutPath,
		Annotations: annotations,
	}
	// Pulls go over HTTP from the insecure registries, and with
	// --insecure-pull from those the FROM lines name; pushes only to the
	// insecure ones.
	pullInsecure := slices.Clone(settings.Insecure)
	if f.InsecurePull && b.Lang == "" && b.Stack == "" {
		if df, err := b.dockerfile(); err == nil {
			pullInsecure = append(pullInsecure, fromRegistries(df)...)
		}
	}
	cacheDir := CacheDir(env.Getenv)
	opts = append(append(opts, popts.options...), project.WithToolEnv(ToolEnv(env.Environ, cacheDir)), project.WithInsecureRegistries(pullInsecure))
	p, err := project.New(cacheDir, opts...)
	if err != nil {
		return nil, err
	}
	res, err := b.Run(ctx, p, settings)
	if err != nil {
		return nil, err
	}
	return res, f.writeDigests(res)
}

// projectOptions are the project options the flags give, and the TLS
// settings the context fetch shares.
type projectOptions struct {
	options []project.Option
	tls     *tlsSettings
}

// settings turns the flags into build settings and project options.
func (f *Flags) settings(getenv func(string) string) (project.BuildSettings, projectOptions, error) {
	var po projectOptions
	platform := f.CustomPlatform
	if platform == "" {
		platform = "linux/" + runtime.GOARCH
	}
	plat, err := project.ParsePlatform("--custom-platform", platform)
	if err != nil {
		return project.BuildSettings{}, po, err
	}
	epoch, err := project.SourceDateEpoch(getenv)
	if err != nil {
		return project.BuildSettings{}, po, err
	}
	args, err := parseBuildArgs(f.BuildArgs, getenv)
	if err != nil {
		return project.BuildSettings{}, po, err
	}
	labels, err := project.ParseKeyValues("--label", f.Labels)
	if err != nil {
		return project.BuildSettings{}, po, err
	}
	insecure := slices.Clone(f.InsecureRegistries)
	var destHosts []string
	for _, d := range f.Destinations {
		if ref, err := name.ParseReference(d); err == nil {
			destHosts = append(destHosts, ref.Context().RegistryStr())
		}
	}
	if f.Insecure {
		insecure = append(insecure, destHosts...)
	}
	mirrors, err := f.mirrors()
	if err != nil {
		return project.BuildSettings{}, po, err
	}
	po.tls, err = f.tlsSettings(destHosts)
	if err != nil {
		return project.BuildSettings{}, po, err
	}
	po.options = []project.Option{
		project.WithLabels(labels), project.WithRegistryMirrors(mirrors),
		project.WithTLSConfig(po.tls.configFor), project.WithMirrorsOnly(f.SkipDefaultRegistryFallback),
	}
	if f.Cache {
		repo, err := f.cacheRepo(insecure)
		if err != nil {
			return project.BuildSettings{}, po, err
		}
		po.options = append(po.options, project.WithCacheRepo(repo), project.WithCacheRepoReadOnly(f.NoPushCache))
	}
	return project.BuildSettings{Platform: *plat, Epoch: epoch, BuildArgs: args, Insecure: insecure}, po, nil
}

// parseBuildArgs reads --build-arg as kaniko does: KEY=VALUE (VALUE may
// be empty), or KEY alone for the environment's value.
func parseBuildArgs(kvs []string, getenv func(string) string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, usage.Errorf("--build-arg %q: want KEY=VALUE or KEY", kv)
		}
		if !ok {
			v = getenv(k)
		}
		out[k] = v
	}
	return out, nil
}

// mirrors are --registry-mirror and the --registry-map entries for
// Docker Hub, which are mirrors by another name.
func (f *Flags) mirrors() ([]string, error) {
	mirrors := slices.Clone(f.RegistryMirrors)
	for _, value := range f.RegistryMaps {
		for _, m := range strings.Split(value, ";") {
			orig, remap, ok := strings.Cut(m, "=")
			if !ok || remap == "" {
				return nil, usage.Errorf("--registry-map %q: want ORIG=REMAP", m)
			}
			if orig != "docker.io" && orig != "index.docker.io" && orig != name.DefaultRegistry {
				return nil, usage.Errorf("--registry-map %q: kiln maps docker.io only for now", m)
			}
			mirrors = append(mirrors, remap)
		}
	}
	return mirrors, nil
}

// cacheRepo is --cache-repo, else <first destination's repository>/cache
// as kaniko infers it.
func (f *Flags) cacheRepo(insecure []string) (name.Repository, error) {
	if f.CacheRepo != "" {
		return project.ParseRepository("--cache-repo", f.CacheRepo, insecure)
	}
	if len(f.Destinations) == 0 {
		return name.Repository{}, usage.Errorf("--cache: name the repository with --cache-repo (kaniko infers it from --destination, and there is none)")
	}
	ref, err := project.ParseImage("--destination", f.Destinations[0], insecure)
	if err != nil {
		return name.Repository{}, err
	}
	return project.ParseRepository("--cache-repo", ref.Context().String()+"/cache", insecure)
}

// writeDigests writes --digest-file and the --image-name-*-digest-file
// files. They are written in place, not renamed into place: a pod's
// /dev/termination-log is a file in a folder kiln cannot write.
func (f *Flags) writeDigests(res *Result) error {
	write := func(flag, path, content string) error {
		if path == "" {
			return nil
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		return nil
	}
	var names, tags strings.Builder
	for _, ref := range res.Refs {
		fmt.Fprintf(&names, "%s@%s\n", ref.Context().Name(), res.Digest)
		tag := ref.Context().Tag("latest").String()
		if t, ok := ref.(name.Tag); ok {
			tag = t.String()
		}
		fmt.Fprintf(&tags, "%s@%s\n", tag, res.Digest)
	}
	if err := write("--digest-file", f.DigestFile, res.Digest.String()); err != nil {
		return err
	}
	if err := write("--image-name-with-digest-file", f.NameDigestFile, names.String()); err != nil {
		return err
	}
	return write("--image-name-tag-with-digest-file", f.NameTagDigestFile, tags.String())
}
