package dev

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ignoredNames are never a source change: VCS data, faas-cli's build
// output and the files editors write beside the one being saved (vim's
// .swp/.swx and its 4913 write probe, backup~ files, emacs' .#locks),
// and the folders of installed packages, which builds leave out.
func ignoredName(name string, isDir bool) bool {
	if isDir {
		return name == ".git" || name == "build" || name == "template" || name == "node_modules" || name == "__pycache__" ||
			name == ".venv" || name == ".tox"
	}
	return strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") || strings.HasSuffix(name, "~") ||
		strings.HasPrefix(name, ".#") || name == "4913" || name == ".DS_Store"
}

// gitignore is the subset of .gitignore rules kiln honours: blank lines and
// # comments skipped, a trailing / for folders only, a leading or inner /
// anchors to the folder, others match a name at any depth, ! re-includes.
type gitignore struct {
	rules []rule
}

type rule struct {
	pattern  string
	anchored bool
	dirOnly  bool
	negate   bool
}

func readGitignore(dir string) *gitignore {
	gi := &gitignore{}
	f, err := os.Open(filepath.Join(dir, ".gitignore"))
	if err != nil {
		return gi
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r rule
		if r.negate = strings.HasPrefix(line, "!"); r.negate {
			line = line[1:]
		}
		if r.dirOnly = strings.HasSuffix(line, "/"); r.dirOnly {
			line = strings.TrimSuffix(line, "/")
		}
		if strings.Contains(line, "/") {
			r.anchored = true
			line = strings.TrimPrefix(line, "/")
		}
		r.pattern = line
		gi.rules = append(gi.rules, r)
	}
	return gi
}

// match reports whether rel (slash-separated, relative to the folder) is
// ignored. A path under an ignored folder is ignored too.
func (g *gitignore) match(rel string, isDir bool) bool {
	parts := strings.Split(rel, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		subIsDir := i < len(parts)-1 || isDir
		if g.matchOne(sub, subIsDir) {
			return true
		}
	}
	return false
}

func (g *gitignore) matchOne(rel string, isDir bool) bool {
	ignored := false
	for _, r := range g.rules {
		if r.dirOnly && !isDir {
			continue
		}
		target := rel
		if !r.anchored {
			target = path.Base(rel)
		}
		if ok, _ := path.Match(r.pattern, target); ok {
			ignored = !r.negate
		}
	}
	return ignored
}
