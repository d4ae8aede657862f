package java

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/layers"
)

// compile compiles src/main/java with javac against kiln's jars and the
// dependencies, cached by the sources, the class path and the JDK, and
// returns the class tree.
func (b *build) compile(ctx context.Context, kilnJars []string, d *deps) (string, error) {
	src := filepath.Join(b.fn.Dir, "src", "main", "java")
	files, err := layers.FromDir(src, "", layers.WithSkip(func(rel string, e fs.DirEntry) bool {
		return !e.IsDir() && !strings.HasSuffix(rel, ".java")
	}))
	if err != nil {
		return "", fmt.Errorf("reading sources: %w", err)
	}
	var sources []string
	for _, f := range files {
		if f.Mode.IsRegular() {
			sources = append(sources, f.Source)
		}
	}
	if len(sources) == 0 {
		return "", sourceError(src, "no .java files", nil)
	}
	sort.Strings(sources)
	classpath := append(append([]string(nil), kilnJars...), d.all()...)
	k := layers.NewKey("java/classes/v3").String(b.jdk.build).String(b.release()).String(d.key).Strings(baseNames(kilnJars)...)
	for _, jar := range kilnJars {
		if err := k.File(jar); err != nil {
			return "", err
		}
	}
	if err := k.Files(files); err != nil {
		return "", fmt.Errorf("hashing %s: %w", src, err)
	}
	dir, err := b.cached(ctx, "classes", k.Sum(), func(dir string) error {
		list := filepath.Join(b.fn.ScratchDir, "javac-sources")
		if err := os.WriteFile(list, []byte(quoteArgs(sources)), 0o644); err != nil {
			return err
		}
		args := []string{"--release", b.release(), "-encoding", "UTF-8", "-d", filepath.Join(dir, "classes"),
			"-cp", strings.Join(classpath, string(os.PathListSeparator)), "@" + list}
		out, err := b.run(ctx, b.fn.Dir, b.jdk.tool("javac"), args...)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return sourceError(src, "javac failed", out)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "classes"), nil
}

// quoteArgs writes an @argfile: one quoted argument per line.
func quoteArgs(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(`"` + strings.ReplaceAll(strings.ReplaceAll(a, `\`, `\\`), `"`, `\"`) + "\"\n")
	}
	return b.String()
}
