package node

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

// Langs describes the lang values the pack builds. Their handler folders
// are alike: one scaffold serves every Node version.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangNode18, FProcess: fprocess, Scaffold: scaffold("node20")},
		{Name: LangNode20, FProcess: fprocess, Scaffold: scaffold("node20"), Listed: true},
		{Name: LangNode22, FProcess: fprocess, Scaffold: scaffold("node20"), Listed: true},
		{Name: LangNode, FProcess: fprocess, Scaffold: scaffold("node20")},
	}
}
