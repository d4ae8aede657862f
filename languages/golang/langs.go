package golang

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

// Langs describes the lang values the pack builds, and golang-http,
// whose images it knows: the OpenFaaS Go templates all start ./handler.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangMiddleware, FProcess: fprocess, Scaffold: scaffold(LangMiddleware), Listed: true},
		{Name: LangMain, FProcess: fprocess, Scaffold: scaffold(LangMain), Listed: true},
		{Name: LangHTTP, FProcess: fprocess, DeployOnly: true},
	}
}
