package debian_test

import (
	"archive/tar"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

type entry struct {
	Path     string
	Mode     fs.FileMode
	Linkname string
	Content  string
	UID, GID int
}

func entries(t *testing.T, files []layers.File) []entry {
	t.Helper()
	var out []entry
	for _, f := range files {
		e := entry{Path: f.Path, Mode: f.Mode, Linkname: f.Linkname, UID: f.UID, GID: f.GID, Content: string(f.Data)}
		if f.Source != "" {
			data, err := os.ReadFile(f.Source)
			if err != nil {
				t.Fatalf("reading the extracted /%s: %v", f.Path, err)
			}
			e.Content = string(data)
		}
		out = append(out, e)
	}
	return out
}

func TestExtract(t *testing.T) {
	files := []debiantest.File{
		{Path: "./etc/", Type: tar.TypeDir, Mode: 0o755},
		{Path: "./etc/services", Mode: 0o644, Data: "http 80/tcp\n"},
		{Path: "./tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Path: "./usr/bin/", Type: tar.TypeDir, Mode: 0o755},
		{Path: "./usr/bin/su", Mode: 0o4755, Data: "ELF"},
		{Path: "./usr/bin/su-again", Type: tar.TypeLink, Linkname: "./usr/bin/su", Mode: 0o4755},
		{Path: "./var/local/", Type: tar.TypeDir, Mode: 0o2775, GID: 50},
		{Path: "./etc/localtime", Type: tar.TypeSymlink, Linkname: "/usr/share/zoneinfo/UTC", Mode: 0o777},
		{Path: "./usr/share/doc/", Type: tar.TypeDir, Mode: 0o755},
		{Path: "./usr/share/doc/pkg/", Type: tar.TypeDir, Mode: 0o755},
		{Path: "./usr/share/doc/pkg/copyright", Mode: 0o644, Data: "GPL"},
		{Path: "./usr/share/doc/pkg/changelog.gz", Mode: 0o644, Data: "gz"},
		{Path: "./usr/share/doc/pkg/examples/", Type: tar.TypeDir, Mode: 0o755},
		{Path: "./usr/share/doc/pkg/examples/a", Mode: 0o644, Data: "a"},
		{Path: "./usr/share/doc/pkg-data", Type: tar.TypeSymlink, Linkname: "pkg", Mode: 0o777},
		{Path: "./usr/share/man/man8/", Type: tar.TypeDir, Mode: 0o755},
		{Path: "./usr/share/man/man8/x.8.gz", Mode: 0o644, Data: "man"},
		{Path: "./usr/share/info/x.info", Mode: 0o644, Data: "info"},
		{Path: "./usr/share/lintian/overrides/pkg", Mode: 0o644, Data: "lintian"},
		{Path: "./usr/share/licenses/kept", Type: tar.TypeLink, Linkname: "./usr/share/doc/pkg/changelog.gz", Mode: 0o644},
	}
	want := func(control string) []entry {
		return []entry{
			{Path: "etc", Mode: fs.ModeDir | 0o755},
			{Path: "etc/services", Mode: 0o644, Content: "http 80/tcp\n"},
			{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "usr/bin", Mode: fs.ModeDir | 0o755},
			{Path: "usr/bin/su", Mode: fs.ModeSetuid | 0o755, Content: "ELF"},
			{Path: "usr/bin/su-again", Mode: fs.ModeSetuid | 0o755, Content: "ELF"},
			{Path: "var/local", Mode: fs.ModeDir | fs.ModeSetgid | 0o775, GID: 50},
			{Path: "etc/localtime", Mode: fs.ModeSymlink | 0o777, Linkname: "/usr/share/zoneinfo/UTC"},
			{Path: "usr/share/doc", Mode: fs.ModeDir | 0o755},
			{Path: "usr/share/doc/pkg", Mode: fs.ModeDir | 0o755},
			{Path: "usr/share/doc/pkg/copyright", Mode: 0o644, Content: "GPL"},
			{Path: "usr/share/doc/pkg-data", Mode: fs.ModeSymlink | 0o777, Linkname: "pkg"},
			{Path: "usr/share/licenses/kept", Mode: 0o644, Content: "gz"},
			{Path: "var/lib/dpkg/status.d/pkg", Mode: 0o644, Content: control},
		}
	}
	tests := []struct {
		name              string
		data, controlComp string
	}{
		{"xz", "xz", "xz"},
		{"zstd data, gzip control", "zst", "gz"},
		{"gzip", "gz", "gz"},
		{"uncompressed", "none", "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := debiantest.Deb{Name: "pkg", Version: "1.0-1", Arch: "amd64", Depends: "libc6", Files: files, DataCompression: tc.data, ControlCompression: tc.controlComp}
			data, err := d.Build()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "pkg.deb")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := debian.Extract(context.Background(), path, t.TempDir())
			if err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			if c.Package != "pkg" || c.Version != "1.0-1" || c.Architecture != "amd64" {
				t.Errorf("Extract() = %s %s %s, want pkg 1.0-1 amd64", c.Package, c.Version, c.Architecture)
			}
			if diff := cmp.Diff(want(d.Control()), entries(t, c.Files)); diff != "" {
				t.Errorf("Extract() files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []debiantest.File
	}{
		{"path leaves the root", []debiantest.File{{Path: "./../etc/passwd", Mode: 0o644}}},
		{"hard link to nothing", []debiantest.File{{Path: "./a", Type: tar.TypeLink, Linkname: "./b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := debiantest.Deb{Name: "bad", Version: "1", Files: tc.files}.Build()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "bad.deb")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := debian.Extract(context.Background(), path, t.TempDir()); err == nil {
				t.Errorf("Extract() = nil, want an error")
			}
		})
	}
	t.Run("not a deb", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.deb")
		os.WriteFile(path, []byte("hello, world\n"), 0o644)
		if _, err := debian.Extract(context.Background(), path, t.TempDir()); err == nil {
			t.Errorf("Extract() = nil, want an error")
		}
	})
}
