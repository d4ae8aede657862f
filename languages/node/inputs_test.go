package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
)

// TestHandlerInputs checks that a manifest linked out of the handler folder
// is never read and that .npmrc feeds the install but no layer.
func TestHandlerInputs(t *testing.T) {
	tests := []struct {
		name      string
		link      string // package.json's target, "" for a regular file
		npmrc     string
		wantErr   bool
		wantNpmrc string
	}{
		{"package.json linked out", "../shadow", "", true, ""},
		{"package.json linked inside", "real.json", "", false, ""},
		{".npmrc with a token", "", "//registry.example/:_authToken=s3cret\n", false, "//registry.example/:_authToken=s3cret\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			write(t, filepath.Join(parent, "shadow"), "root:$6$hash:19000::::::\n")
			dir := function(t, map[string]string{".npmrc": tc.npmrc})
			if err := os.Rename(dir, filepath.Join(parent, "fn")); err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(parent, "fn")
			if tc.link != "" {
				if err := os.Rename(filepath.Join(dir, "package.json"), filepath.Join(dir, "real.json")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tc.link, filepath.Join(dir, "package.json")); err != nil {
					t.Fatal(err)
				}
			}
			m, err := readManifest(dir)
			if tc.wantErr {
				var se *languages.SourceError
				if !errors.As(err, &se) || !strings.Contains(se.Reason, "outside the handler folder") || strings.Contains(err.Error(), "root") {
					t.Fatalf("readManifest() = %v, want a SourceError on the link", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readManifest() = %v", err)
			}
			if string(m.npmrc) != tc.wantNpmrc {
				t.Errorf("readManifest().npmrc = %q, want %q", m.npmrc, tc.wantNpmrc)
			}
			code := &codeStep{fn: languages.Function{Dir: dir}}
			files, err := code.files()
			if err != nil {
				t.Fatalf("files() = %v", err)
			}
			var paths []string
			for _, f := range files {
				paths = append(paths, f.Path)
			}
			if slices.Contains(paths, functionDir+"/.npmrc") {
				t.Errorf("files() = %v, want no .npmrc", paths)
			}
		})
	}
}

// TestNpmrcUsedNotKept builds a function whose .npmrc holds a token: npm
// reads it, and neither the image nor kiln's cache keeps it.
func TestNpmrcUsedNotKept(t *testing.T) {
	reg, _ := fakeRegistry(t)
	needTools(t)
	cacheDir := t.TempDir()
	b := builderIn(t, cacheDir, newPack(t, WithCacheDir(cacheDir), WithEnv(os.Environ()), WithRegistry(reg)))
	const token = "s3cret-npm-token"
	dir := function(t, map[string]string{".npmrc": "//registry.example/:_authToken=" + token + "\n"})
	res, err := b.Build(context.Background(), languages.Function{Name: "fn", Dir: dir, Lang: LangNode20, Platform: linuxAMD64})
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	ls, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		for _, p := range layerPaths(t, l) {
			if strings.HasSuffix(p, ".npmrc") {
				t.Errorf("layer %q holds %s", res.Layers[i].Name, p)
			}
		}
	}
	err = filepath.WalkDir(cacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), token) {
			t.Errorf("kiln's cache keeps the token in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
