package golang

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// localReplace is a replace directive of go.mod whose target is a folder,
// the one way a Go build reads files outside the handler folder.
type localReplace struct {
	// Path is the target as go.mod writes it: "../lib".
	Path string
	// Line is its line in go.mod.
	Line int
}

// localReplaces returns the replace directives of go.mod's content mod
// that name a folder, in file order, as go reads them: a target starting
// with ./ or ../, or an absolute one. golang.org/x/mod is no dependency of
// kiln, and these few lines read what go.mod's grammar allows for replace.
func localReplaces(mod []byte) []localReplace {
	var out []localReplace
	block := false
	for i, line := range strings.Split(string(mod), "\n") {
		if c := strings.Index(line, "//"); c >= 0 {
			line = line[:c]
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case block && fields[0] == ")":
			block = false
			continue
		case block:
		case fields[0] == "replace" && len(fields) == 2 && fields[1] == "(":
			block = true
			continue
		case fields[0] == "replace":
			fields = fields[1:]
		default:
			continue
		}
		arrow := -1
		for j, f := range fields {
			if f == "=>" {
				arrow = j
			}
		}
		if arrow < 0 || arrow+1 >= len(fields) {
			continue // go reports the mistake
		}
		target := fields[arrow+1]
		if t, err := strconv.Unquote(target); err == nil {
			target = t
		}
		if isDirectoryPath(target) {
			out = append(out, localReplace{Path: target, Line: i + 1})
		}
	}
	return out
}

// isDirectoryPath reports whether a replacement names a folder, as
// golang.org/x/mod/modfile.IsDirectoryPath does.
func isDirectoryPath(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") ||
		strings.HasPrefix(p, "/") || filepath.IsAbs(p)
}

// resolveReplaces resolves the folders go.mod's replaces name, relative
// to the handler folder (languages.Named): as named, never through a
// link. An absolute target (which the binary would record, and a build
// elsewhere lacks), a missing folder, a file or a folder reached through a
// link is a *SourceError on go.mod's line.
func resolveReplaces(fn languages.Function, replaces []localReplace) ([]languages.Named, error) {
	gomod := filepath.Join(fn.Dir, "go.mod")
	var out []languages.Named
	for _, r := range replaces {
		label := "replace => " + r.Path
		named, err := languages.Name(fn, gomod, r.Line, label, fn.Dir, r.Path)
		if err != nil {
			return nil, err
		}
		if !named.IsDir() {
			return nil, &languages.SourceError{Path: gomod, Line: r.Line, Reason: fmt.Sprintf("%s: %s is not a folder", label, named.Path)}
		}
		out = append(out, named)
	}
	return out, nil
}

// replacedFiles lists the files go build may read of the replaced
// folders, placed relative to the handler folder, under the handler
// folder's rule.
func replacedFiles(replaced []languages.Named) ([]layers.File, error) {
	var files []layers.File
	for _, named := range replaced {
		more, err := named.Files(func(rel string, d fs.DirEntry) bool { return rel == ".git" })
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}
