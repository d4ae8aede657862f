package builderapi

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/progress"
	"github.com/kiln-build/kiln/project"
)

// ExecutorBuilder builds requests as kiln executor builds: each in a
// project of its own, so that its progress goes to its own reply, over
// one cache shared by every build.
type ExecutorBuilder struct {
	// CacheDir is kiln's cache (executor.CacheDir).
	CacheDir string
	// Getenv gives SOURCE_DATE_EPOCH.
	Getenv func(string) string
	// Options are the project options of every build (tool environment,
	// version, registry settings).
	Options []project.Option
	// Insecure names the registries pushed to over plain HTTP.
	Insecure []string
}

var _ Builder = (*ExecutorBuilder)(nil)

// Build implements Builder.
func (e *ExecutorBuilder) Build(ctx context.Context, req *Request, log io.Writer) (string, error) {
	settings, err := e.settings(req.Config)
	if err != nil {
		return "", err
	}
	b := executor.Build{Dir: req.Dir, Destinations: []string{req.Config.Image}, NoPush: req.Config.SkipPush}
	if native(req.Lang) {
		b.Dir, b.Lang = filepath.Join(req.Dir, "function"), req.Lang
	}
	if len(req.Secrets) > 0 {
		dir, err := os.MkdirTemp("", "kiln-builder-secrets-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(dir)
		b.Secrets = map[string]string{}
		for id, v := range req.Secrets {
			p := filepath.Join(dir, fmt.Sprint(len(b.Secrets)))
			if err := os.WriteFile(p, v, 0o600); err != nil {
				return "", err
			}
			b.Secrets[id] = p
		}
	}
	p, err := project.New(e.CacheDir, append(e.Options, project.WithProgress(progress.New(log, log, progress.Plain).Event))...)
	if err != nil {
		return "", err
	}
	res, err := b.Run(ctx, p, settings)
	if err != nil {
		return "", err
	}
	return res.NameDigests()[0], nil
}

// native says whether kiln builds lang with a pack of its own.
func native(lang string) bool {
	l, ok := packs.Lookup(lang)
	return lang != "" && ok && !l.DeployOnly
}

// settings are a request's build settings: one platform at most (kiln
// builds one image per request), the build arguments, SOURCE_DATE_EPOCH.
func (e *ExecutorBuilder) settings(c Config) (project.BuildSettings, error) {
	platform := "linux/" + runtime.GOARCH
	switch len(c.Platforms) {
	case 0:
	case 1:
		platform = c.Platforms[0]
	default:
		return project.BuildSettings{}, fmt.Errorf("%s: platforms %v: kiln's builder builds one platform per request", configFile, c.Platforms)
	}
	plat, err := project.ParsePlatform("platforms", platform)
	if err != nil {
		return project.BuildSettings{}, err
	}
	getenv := e.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	epoch, err := project.SourceDateEpoch(getenv)
	if err != nil {
		return project.BuildSettings{}, err
	}
	return project.BuildSettings{Platform: *plat, Epoch: epoch, BuildArgs: c.BuildArgs, Insecure: e.Insecure}, nil
}
