package java

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

// Langs describes the lang values the pack builds. None has a fixed
// fprocess: the command names the function's main class, or its native
// binary (NATIVE=true). java17 handlers are laid out as java11's.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangJava11, Scaffold: scaffold(LangJava11), Listed: true},
		{Name: LangJava17, Scaffold: scaffold(LangJava11), Listed: true},
		{Name: LangJava, Scaffold: scaffold(LangJava), Listed: true},
	}
}
