package node

import (
	"embed"

	"github.com/kiln-build/kiln/languages"
)

// scaffolds are the pack's `kiln new` templates, a folder per layout.
//
//go:embed scaffold
var scaffolds embed.FS

// Langs describes the lang values the pack builds. The Express-style
// handler folders are alike: one scaffold serves every Node version;
// classic node has its own.
func Langs() []languages.Lang {
	return []languages.Lang{
		{Name: LangNode18, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, "node20")},
		{Name: LangNode20, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, "node20"), Listed: true},
		{Name: LangNode22, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, "node20"), Listed: true},
		{Name: LangNode, FProcess: fprocess, Scaffold: languages.Scaffold(scaffolds, "node")},
	}
}
