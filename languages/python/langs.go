package python

import (
	"embed"
	"io/fs"

	"github.com/kiln-build/kiln/languages"
)

// scaffolds are the pack's `kiln new` templates, a folder per layout.
//
//go:embed scaffold
var scaffolds embed.FS

// scaffold returns the templates of a layout.
func scaffold(layout string) fs.FS {
	sub, err := fs.Sub(scaffolds, "scaffold/"+layout)
	if err != nil {
		panic(err) // layout is a constant of this file
	}
	return sub
}

// Langs describes the lang values the pack builds; python is python3
// under another name.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangHTTP, FProcess: fprocess("http"), Scaffold: scaffold(LangHTTP), Listed: true},
		{Name: LangFlask, FProcess: fprocess("flask"), Scaffold: scaffold(LangFlask), Listed: true},
		{Name: LangPython3, FProcess: fprocess("classic"), Scaffold: scaffold(LangPython3)},
		{Name: LangPython, FProcess: fprocess("classic"), Scaffold: scaffold(LangPython3)},
	}
}
