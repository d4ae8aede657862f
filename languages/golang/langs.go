package golang

import (
	"embed"

	"github.com/kiln-build/kiln/languages"
)

// scaffolds are the pack's `kiln new` templates, a folder per layout.
//
//go:embed scaffold
var scaffolds embed.FS

// Langs describes the lang values the pack builds: the OpenFaaS Go
// templates all start ./handler.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangMiddleware, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, LangMiddleware), Listed: true},
		{Name: LangMain, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, LangMain), Listed: true},
		{Name: LangHTTP, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, LangHTTP), Listed: true},
	}
}
