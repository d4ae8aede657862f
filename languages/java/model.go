package java

import (
	"archive/zip"
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// openfaas holds kiln's own com.openfaas.model API and entrypoint, compiled
// once per JDK build.
//
//go:embed openfaas
var openfaas embed.FS

// modelJar compiles the embedded model and entrypoint for Java 11 and
// returns the jar's path.
func (b *build) modelJar(ctx context.Context) (string, error) {
	k := layers.NewKey("java/model/v1").String(b.jdk.build)
	var names []string
	err := fs.WalkDir(openfaas, "openfaas", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		src, _ := openfaas.ReadFile(n)
		k.String(n).String(string(src))
	}
	dir, err := b.cached(ctx, "model", k.Sum(), func(dir string) error {
		srcDir := filepath.Join(dir, "src")
		var files []string
		for _, n := range names {
			src, _ := openfaas.ReadFile(n)
			p := filepath.Join(srcDir, filepath.FromSlash(n))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, src, 0o644); err != nil {
				return err
			}
			files = append(files, p)
		}
		classes := filepath.Join(dir, "classes")
		args := append([]string{"--release", "11", "-encoding", "UTF-8", "-nowarn", "-d", classes}, files...)
		if out, err := b.run(ctx, dir, b.jdk.tool("javac"), args...); err != nil {
			return fmt.Errorf("compiling kiln's OpenFaaS model with %s: %w\n%s", b.jdk.tool("javac"), err, out)
		}
		if err := writeJar(filepath.Join(dir, "openfaas.jar"), classes); err != nil {
			return err
		}
		return os.RemoveAll(srcDir)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "openfaas.jar"), nil
}

// writeJar zips a class tree with a fixed time and order, so the same
// classes give the same jar bytes.
func writeJar(path, root string) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	modified := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	header := func(name string) error {
		_, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modified})
		return err
	}
	if err := header("META-INF/"); err != nil {
		return err
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "META-INF/MANIFEST.MF", Method: zip.Deflate, Modified: modified})
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("Manifest-Version: 1.0\r\nCreated-By: kiln\r\n\r\n")); err != nil {
		return err
	}
	files, err := layers.FromDir(root, "")
	if err != nil {
		return err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if f.Mode.IsDir() {
			if err := header(strings.TrimSuffix(f.Path, "/") + "/"); err != nil {
				return err
			}
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Path, Method: zip.Deflate, Modified: modified})
		if err != nil {
			return err
		}
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// sourceError turns javac's output into a SourceError at its first
// error's file and line.
func sourceError(dir, reason string, out []byte) error {
	e := &languages.SourceError{Path: dir, Reason: reason, Detail: strings.TrimSpace(string(out))}
	for _, line := range strings.Split(string(out), "\n") {
		file, rest, ok := strings.Cut(line, ".java:")
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, ":")
		if n, err := fmt.Sscanf(num, "%d", &e.Line); ok && err == nil && n == 1 {
			e.Path = file + ".java"
			break
		}
	}
	return e
}
