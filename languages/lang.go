package languages

import "io/fs"

// Lang is a lang value as its pack declares it, for those who need the
// lang without building: the CLI's help, deploy's fprocess and `kiln new`.
type Lang struct {
	// Name is the stack file's lang value.
	Name string
	// FProcess is the command the pack's images start for the lang, the
	// fprocess its Plan writes into the image's environment; deploy sends
	// it for a function whose image does not say. Empty when it depends
	// on the function.
	FProcess string
	// Scaffold holds the lang's `kiln new` templates: files named
	// NAME.tmpl, Go text templates over the new function, written to NAME.
	// Nil when there are none.
	Scaffold fs.FS
	// Listed names the lang in short lists, such as `kiln build --lang`'s
	// help; the others are aliases and other versions of a listed one.
	Listed bool
	// DeployOnly marks a lang the pack does not build, but whose images
	// it knows: an OpenFaaS template whose prebuilt images (skip_build)
	// deploy with FProcess.
	DeployOnly bool
}

// Built returns the names of the langs a pack builds, in order: all of
// langs but the DeployOnly ones.
func Built(langs []Lang) []string {
	var out []string
	for _, l := range langs {
		if !l.DeployOnly {
			out = append(out, l.Name)
		}
	}
	return out
}

// Scaffold returns the templates of one layout of a pack's embedded `kiln
// new` templates: the folder scaffold/<layout> of templates.
func Scaffold(templates fs.FS, layout string) fs.FS {
	sub, err := fs.Sub(templates, "scaffold/"+layout)
	if err != nil {
		panic(err) // fs.Sub fails only on an invalid path, and layouts are constants
	}
	return sub
}
