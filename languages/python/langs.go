package python

import (
	"embed"

	"github.com/kiln-build/kiln/languages"
)

// scaffolds are the pack's `kiln new` templates, a folder per layout.
//
//go:embed scaffold
var scaffolds embed.FS

// Langs describes the lang values the pack builds; python is python3
// under another name.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangHTTP, FProcess: fprocess("http"), Scaffold: languages.Scaffold(scaffolds, LangHTTP), Listed: true},
		{Name: LangFlask, FProcess: fprocess("flask"), Scaffold: languages.Scaffold(scaffolds, LangFlask), Listed: true},
		{Name: LangPython3, FProcess: fprocess("classic"), Scaffold: languages.Scaffold(scaffolds, LangPython3)},
		{Name: LangPython, FProcess: fprocess("classic"), Scaffold: languages.Scaffold(scaffolds, LangPython3)},
	}
}
