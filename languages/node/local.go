package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// localDeps returns the folders and tarballs package.json's dependencies
// name by path ("file:../lib", "../lib"), with those their own
// package.json names in turn, as npm installs them: the one way npm reads
// files outside the handler folder. Each is read as named, never through a
// link (languages.Name); "link:", which npm does not know, is a
// *SourceError on its line, as is a path under the home folder.
func localDeps(fn languages.Function, data []byte) ([]languages.Named, error) {
	var out []languages.Named
	seen := map[string]bool{}
	var walk func(manifest string, data []byte, base string, dev bool) error
	walk = func(manifest string, data []byte, base string, dev bool) error {
		// What is not JSON, or a field of another shape, is npm's to
		// report.
		var pkg map[string]json.RawMessage
		if json.Unmarshal(data, &pkg) != nil {
			return nil
		}
		for _, field := range depFields(dev) {
			var deps map[string]string
			if json.Unmarshal(pkg[field], &deps) != nil {
				continue
			}
			for _, name := range sortedKeys(deps) {
				spec := deps[name]
				path, ok, err := localSpec(spec)
				line := lineOf(data, spec)
				label := fmt.Sprintf("%s %q: %q", field, name, spec)
				if err != nil {
					return &languages.SourceError{Path: manifest, Line: line, Reason: label + ": " + err.Error()}
				}
				if !ok {
					continue
				}
				n, err := languages.Name(fn, manifest, line, label, base, path)
				if err != nil {
					return err
				}
				if seen[n.Rel] {
					continue
				}
				seen[n.Rel] = true
				out = append(out, n)
				if !n.IsDir() {
					continue
				}
				// A dependency's own file: dependencies are relative to
				// its folder; its devDependencies are not installed.
				sub, err := languages.ReadManifest(n.Path, "package.json")
				var se *languages.SourceError
				switch {
				case errors.As(err, &se):
					return se
				case errors.Is(err, fs.ErrNotExist):
					continue // npm reports the folder that is no package
				case err != nil:
					return fmt.Errorf("reading %s: %w", n.Path, err)
				}
				if err := walk(filepath.Join(n.Path, "package.json"), sub, n.Path, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(filepath.Join(fn.Dir, "package.json"), data, fn.Dir, true)
	return out, err
}

// depFields are the dependency fields of package.json npm installs: a
// dependency's own devDependencies never are.
func depFields(dev bool) []string {
	if dev {
		return []string{"dependencies", "optionalDependencies", "devDependencies"}
	}
	return []string{"dependencies", "optionalDependencies"}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// localSpec returns the path a dependency spec names, as npm reads one:
// "file:../lib", or a bare "../lib" or "./x.tgz"; ok is false for a
// registry, git or URL spec.
func localSpec(spec string) (path string, ok bool, err error) {
	switch {
	case strings.HasPrefix(spec, "link:"):
		return "", false, errors.New(`link: is yarn's and pnpm's; npm, which kiln runs, installs a folder named "file:` + strings.TrimPrefix(spec, "link:") + `"`)
	case strings.HasPrefix(spec, "file:"):
		path = strings.TrimPrefix(spec, "file:")
	case spec == "." || spec == ".." || strings.HasPrefix(spec, "./") || strings.HasPrefix(spec, "../") || strings.HasPrefix(spec, "/") || strings.HasPrefix(spec, "~/"):
		path = spec
	default:
		return "", false, nil
	}
	if path == "~" || strings.HasPrefix(path, "~/") {
		return "", false, errors.New("a path in the home folder is this machine's; name it relative to package.json")
	}
	return path, true, nil
}

// lineOf returns the line of data where spec first appears as a JSON
// string, or 0.
func lineOf(data []byte, spec string) int {
	quoted, err := json.Marshal(spec)
	if err != nil {
		return 0
	}
	i := bytes.Index(data, quoted)
	if i < 0 {
		return 0
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

// localFiles lists the files of the local dependencies, placed relative
// to the handler folder, as npm packs them: without their node_modules
// and .git.
func localFiles(locals []languages.Named) ([]layers.File, error) {
	var files []layers.File
	for _, n := range locals {
		more, err := n.Files(func(rel string, d fs.DirEntry) bool { return rel == "node_modules" || rel == ".git" })
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}
