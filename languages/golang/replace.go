package golang

import (
	"fmt"
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
	// Dir is the absolute folder it names.
	Dir string
	// Line is its line in go.mod.
	Line int
}

// localReplaces returns the replace directives of the go.mod at gomod
// (content mod) that name a folder, in file order, as go reads them: a
// target starting with ./ or ../, or an absolute one, relative to the
// handler folder. golang.org/x/mod is no dependency of kiln, and these few
// lines read what go.mod's grammar allows for replace.
func localReplaces(gomod string, mod []byte) []localReplace {
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
		if !isDirectoryPath(target) {
			continue
		}
		dir := target
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(gomod), filepath.FromSlash(target))
		}
		out = append(out, localReplace{Path: target, Dir: dir, Line: i + 1})
	}
	return out
}

// isDirectoryPath reports whether a replacement names a folder, as
// golang.org/x/mod/modfile.IsDirectoryPath does.
func isDirectoryPath(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") ||
		strings.HasPrefix(p, "/") || filepath.IsAbs(p)
}

// replacedFiles lists the files of a replaced folder that go build may
// read, under the same rule as the handler folder's: links leaving it are
// refused. A missing folder is a *SourceError on go.mod's line.
func replacedFiles(gomod string, r localReplace) ([]layers.File, error) {
	if err := languages.CheckHandlerDir(r.Dir); err != nil {
		return nil, &languages.SourceError{Path: gomod, Line: r.Line, Reason: fmt.Sprintf("replace => %s: %s is not a folder", r.Path, r.Dir)}
	}
	return languages.HandlerFiles(r.Dir, "", nil)
}

// hashReplaces adds the replaced folders' files to k: their target as
// written, then every entry.
func hashReplaces(k *layers.Key, gomod string, replaces []localReplace) error {
	for _, r := range replaces {
		files, err := replacedFiles(gomod, r)
		if err != nil {
			return err
		}
		k.String("replace " + r.Path)
		if err := k.Files(files); err != nil {
			return fmt.Errorf("hashing %s: %w", r.Dir, err)
		}
	}
	return nil
}
