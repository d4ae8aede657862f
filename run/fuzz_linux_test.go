package run

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/layers"
)

// FuzzApplyTar feeds arbitrary bytes to the layer unpacker, the one place
// kiln parses a tar it did not write: it must never panic nor write
// outside the root, whatever names, links and whiteouts the tar holds.
func FuzzApplyTar(f *testing.F) {
	var good bytes.Buffer
	if err := layers.WriteTar(&good, []layers.File{
		layers.Bytes("home/app/handler", 0o755, []byte("#!/bin/sh\n")),
		layers.Symlink("home/app/link", "handler"),
		layers.Dir("tmp", 0o1777),
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add(tarOf(f, []*tar.Header{
		{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "out", Typeflag: tar.TypeSymlink, Linkname: "../.."},
		{Name: "out/escape", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
		{Name: "a/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "a/.wh.b", Typeflag: tar.TypeReg},
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The root lies deep in a folder of its own, so that a tar
		// climbing out a few levels lands where the test looks.
		parent := t.TempDir()
		root := filepath.Join(parent, "a", "b", "c", "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, stacked := range []bool{false, true} {
			u := unpacker{root: root, stacked: stacked}
			_ = u.applyTar(context.Background(), bytes.NewReader(data))
			err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if p != root && !strings.HasPrefix(root, p) && !strings.HasPrefix(p, root+string(filepath.Separator)) {
					t.Errorf("applyTar() wrote %s, outside the root", p)
				}
				if p == root {
					return filepath.SkipDir
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

func tarOf(f *testing.F, hdrs []*tar.Header) []byte {
	f.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}
