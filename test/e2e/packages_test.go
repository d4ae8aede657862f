//go:build e2e

package e2e

import (
	"archive/tar"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestAdditionalPackage adds Debian packages to the runtime base the way
// faas-cli's ADDITIONAL_PACKAGE build arg does: resolved with their
// dependencies against the mirror, as layers above the base's own, which
// stay shared with images that add nothing.
func TestAdditionalPackage(t *testing.T) {
	o := kilnOpts{cache: t.TempDir()}
	plain := buildJSON(t, o, sample(goMain), "--lang", "go", "--image", "kiln.local/e2e/pkgs:plain")
	dir := filepath.Join(t.TempDir(), "oci")
	extended := buildJSON(t, o, sample(goMain), "--lang", "go", "--image", "kiln.local/e2e/pkgs:extended",
		"--output", "oci:"+dir, "-b", "ADDITIONAL_PACKAGE=libsqlite3-0 netbase")

	var plainDigests []string
	for _, l := range plain.Layers {
		plainDigests = append(plainDigests, l.Digest)
	}
	var added []string
	for _, l := range extended.Layers {
		if !slices.Contains(plainDigests, l.Digest) {
			added = append(added, l.Name)
		}
	}
	if !slices.ContainsFunc(added, func(n string) bool { return strings.Contains(n, "libsqlite3-0") }) ||
		!slices.ContainsFunc(added, func(n string) bool { return strings.Contains(n, "libc6") }) {
		t.Errorf("layers added by ADDITIONAL_PACKAGE = %v, want libsqlite3-0 and its dependency libc6", added)
	}
	if slices.ContainsFunc(added, func(n string) bool { return strings.Contains(n, "netbase") }) {
		t.Errorf("layers added = %v, want no second netbase: the base has it", added)
	}

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image() = %v", err)
	}
	if !imageHas(t, img, "usr/lib/x86_64-linux-gnu/libsqlite3.so.0") {
		t.Errorf("image lacks usr/lib/x86_64-linux-gnu/libsqlite3.so.0")
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Labels["io.github.kiln-build.base.extra"]; !strings.Contains(got, "libsqlite3-0=") {
		t.Errorf("base extra label = %q, want it to name libsqlite3-0", got)
	}

	r := kiln(t, o, "build", sample(goMain), "--lang", "go", "--image", "kiln.local/e2e/pkgs:bad", "-b", "ADDITIONAL_PACKAGE=no-such-package-kiln")
	if r.code != 1 || !strings.Contains(r.stderr, "no-such-package-kiln") {
		t.Errorf("kiln build with an unknown package: exit %d, stderr %q; want 1 and the package named", r.code, r.stderr)
	}
}

// imageHas reports whether the image's flattened file system holds path.
func imageHas(t *testing.T, img v1.Image, path string) bool {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == path {
			return true
		}
	}
}
