package project

import (
	"os"
	"slices"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/stack"
)

// BuildContext lays out t's build context as a build elsewhere (kiln's
// executor in a cluster) receives it, using scratch when a copy is needed.
// A function built by a language pack gives its handler folder, staged
// with its configuration.copy paths when it has some, and its lang; one
// built through a Dockerfile gives the folder faas-cli would send to
// Docker (the template with the handler in function/, or the lang
// dockerfile handler folder) and lang "", which tells the executor to
// build its Dockerfile.
func (p *Project) BuildContext(t Target, scratch string) (dir, lang string, err error) {
	fn := t.Function
	if len(t.Secrets) > 0 {
		return "", "", usage.Errorf("function %s: build_secrets are not sent to a cluster build; give registry credentials with --dependency-secret", fn.Name)
	}
	if tmpl, ok := p.viaDockerfile(fn, BuiltLangs()); ok {
		dir, err := dockerfileContext(t, tmpl, scratch)
		return dir, "", err
	}
	if langs := BuiltLangs(); !slices.Contains(langs, fn.Lang) {
		return "", "", unknownLang(fn.Lang, "lang", langs)
	}
	if _, err := os.Stat(fn.Dir); err != nil {
		return "", "", err
	}
	if len(t.Copies) == 0 {
		return fn.Dir, fn.Lang, nil
	}
	cwd, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	return scratch, fn.Lang, stack.Stage(fn.Dir, scratch, cwd, t.Copies)
}
