package python

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// requirementRefs returns what requirements.txt names by path, as pip
// reads it: the files -r and -c include (relative to the file that
// includes them, and theirs in turn), the local projects and archives its
// lines name (relative to the handler folder, pip's working folder) and
// the local folders -f names. Each is read as named, never through a link
// (languages.Name). An editable install (-e) is a *SourceError on its
// line: it would point the image at a folder it lacks.
func requirementRefs(fn languages.Function) ([]languages.Named, error) {
	var out []languages.Named
	seen := map[string]bool{}
	var walk func(file string) error
	walk = func(file string) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("reading requirements: %w", err)
		}
		for _, l := range logicalLines(string(b)) {
			ref, err := parseLine(l.text)
			if err != nil {
				return &languages.SourceError{Path: file, Line: l.number, Reason: err.Error()}
			}
			if ref.path == "" {
				continue
			}
			base := fn.Dir
			if ref.include {
				base = filepath.Dir(file)
			}
			if ref.findLinks {
				// pip takes -f relative to the file when it is there.
				if _, err := os.Lstat(filepath.Join(filepath.Dir(file), ref.path)); err == nil {
					base = filepath.Dir(file)
				}
			}
			n, err := languages.Name(fn, file, l.number, ref.label, base, ref.path)
			if err != nil {
				return err
			}
			if seen[n.Rel] {
				continue
			}
			seen[n.Rel] = true
			out = append(out, n)
			if ref.include {
				if n.IsDir() {
					return &languages.SourceError{Path: file, Line: l.number, Reason: ref.label + ": is a folder, not a requirements file"}
				}
				if err := walk(n.Path); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(filepath.Join(fn.Dir, "requirements.txt"))
	return out, err
}

// refFiles lists the files refs name, placed relative to the handler
// folder, without what a project's build never reads.
func refFiles(refs []languages.Named) ([]layers.File, error) {
	var files []layers.File
	for _, n := range refs {
		more, err := n.Files(func(rel string, d fs.DirEntry) bool {
			return rel == ".git" || rel == ".venv" || rel == ".tox" || d.Name() == "__pycache__"
		})
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}

// line is a requirements file's logical line: continuations joined,
// comments removed.
type line struct {
	number int
	text   string
}

// logicalLines splits a requirements file as pip does: a line ending in
// a backslash continues on the next, and # starts a comment at the start
// of a line or after a space.
func logicalLines(content string) []line {
	var out []line
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(content, "\n") {
		raw = strings.TrimSuffix(raw, "\r")
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(raw, "\\") {
			cur.WriteString(strings.TrimSuffix(raw, "\\"))
			continue
		}
		cur.WriteString(raw)
		text := cur.String()
		cur.Reset()
		if strings.HasPrefix(text, "#") {
			text = ""
		}
		if i := strings.Index(text, " #"); i >= 0 {
			text = text[:i]
		}
		if i := strings.Index(text, "\t#"); i >= 0 {
			text = text[:i]
		}
		if text = strings.TrimSpace(text); text != "" {
			out = append(out, line{number: start, text: text})
		}
	}
	return out
}

// ref is what one line names by path.
type ref struct {
	path, label string
	// include is -r or -c: a file of requirements, relative to the file
	// that names it.
	include   bool
	findLinks bool
}

// parseLine returns the local path a requirements line names, if any.
// URLs (index, VCS, http archives) are pip's to fetch and name no path.
func parseLine(text string) (ref, error) {
	fields := strings.Fields(text)
	opt, val := fields[0], ""
	if o, v, ok := strings.Cut(opt, "="); ok && strings.HasPrefix(opt, "--") {
		opt, val = o, v
	} else if len(opt) > 2 && opt[0] == '-' && opt[1] != '-' {
		opt, val = opt[:2], opt[2:]
	}
	if val == "" && len(fields) > 1 {
		val = fields[1]
	}
	switch opt {
	case "-r", "--requirement", "-c", "--constraint":
		if isURL(val) {
			return ref{}, nil
		}
		return ref{path: val, label: opt + " " + val, include: true}, nil
	case "-e", "--editable":
		return ref{}, fmt.Errorf("%s %s: an editable install points the image at a folder it lacks; name the project without -e, or its wheel", opt, val)
	case "-f", "--find-links":
		if isURL(val) {
			return ref{}, nil
		}
		return ref{path: val, label: opt + " " + val, findLinks: true}, nil
	}
	if strings.HasPrefix(opt, "-") {
		return ref{}, nil
	}
	// A requirement: "name", "name @ url", or a path or archive.
	spec := text
	if _, url, ok := strings.Cut(text, "@"); ok && !strings.ContainsAny(strings.Fields(text)[0], "/\\") {
		spec = strings.TrimSpace(url)
	}
	spec, _, _ = strings.Cut(spec, ";")
	if f := strings.Fields(spec); len(f) > 0 {
		spec = f[0]
	}
	if rest, ok := strings.CutPrefix(spec, "file:"); ok {
		// file:///p and file://host/p are absolute.
		spec = "/" + strings.TrimLeft(rest, "/")
		if !strings.HasPrefix(rest, "//") {
			spec = rest
		}
	} else if isURL(spec) || !looksLikePath(spec) {
		return ref{}, nil
	}
	spec, _, _ = strings.Cut(spec, "#")
	if i := strings.Index(spec, "["); i > 0 && strings.HasSuffix(spec, "]") {
		spec = spec[:i]
	}
	return ref{path: spec, label: spec}, nil
}

func isURL(s string) bool { return strings.Contains(s, "://") }

// looksLikePath reports whether a requirement is a path, as pip's
// _looks_like_path and its archive check tell.
func looksLikePath(s string) bool {
	if strings.ContainsAny(s, "/\\") || strings.HasPrefix(s, ".") {
		return true
	}
	for _, ext := range []string{".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"} {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}
