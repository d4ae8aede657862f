package java

import (
	"embed"

	"github.com/kiln-build/kiln/languages"
)

// scaffolds are the pack's `kiln new` templates, a folder per layout.
//
//go:embed scaffold
var scaffolds embed.FS

// Langs describes the lang values the pack builds. None has a fixed
// fprocess: the command names the function's main class, or its native
// binary (NATIVE=true). java17 handlers are laid out as java11's.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangJava11, Scaffold: languages.Scaffold(scaffolds, LangJava11), Listed: true},
		{Name: LangJava17, Scaffold: languages.Scaffold(scaffolds, LangJava11), Listed: true},
		{Name: LangJava, Scaffold: languages.Scaffold(scaffolds, LangJava), Listed: true},
	}
}
