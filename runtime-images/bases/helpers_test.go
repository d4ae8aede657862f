package bases

import (
	"archive/tar"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

// locked returns the packages r pins for arch, in the order of the steps
// Assemble makes for them.
func locked(t *testing.T, r *Recipe, arch string) []LockedPackage {
	t.Helper()
	pkgs, err := r.locked(arch)
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// testCert returns a self-signed certificate in PEM form.
func testCert(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// staticMirror serves small stand-ins for the packages of the static
// recipe, in the three suites it reads, for amd64 and arm64, plus extra
// packages in bookworm.
type staticMirror struct {
	*debiantest.Mirror
	certs map[string][]byte // by path under usr/share/ca-certificates
}

func newStaticMirror(t *testing.T, extra ...debiantest.Deb) *staticMirror {
	t.Helper()
	certs := map[string][]byte{
		"mozilla/Zeta_Root.crt":  testCert(t, "Zeta"),
		"mozilla/Alpha_Root.crt": testCert(t, "Alpha"),
		"mozilla/ACCV_Root.crt":  testCert(t, "ACCV"),
	}
	// One certificate without its final newline, as some upstream files are.
	certs["mozilla/Alpha_Root.crt"] = certs["mozilla/Alpha_Root.crt"][:len(certs["mozilla/Alpha_Root.crt"])-1]
	dir := func(p string, mode int64) debiantest.File {
		return debiantest.File{Path: p, Type: tar.TypeDir, Mode: mode}
	}
	file := func(p, data string) debiantest.File { return debiantest.File{Path: p, Mode: 0o644, Data: data} }
	doc := func(pkg string) []debiantest.File {
		return []debiantest.File{
			dir("./usr/share/doc/"+pkg+"/", 0o755),
			file("./usr/share/doc/"+pkg+"/copyright", pkg+" licence\n"),
			file("./usr/share/doc/"+pkg+"/changelog.gz", "changes"),
		}
	}
	baseFiles := func(arch string) debiantest.Deb {
		return debiantest.Deb{Name: "base-files", Version: "12.4+deb12u5", Arch: arch, PreDepends: "awk", Files: append([]debiantest.File{
			dir("./etc/", 0o755), dir("./tmp/", 0o1777), dir("./home/", 0o755), dir("./root/", 0o700),
			file("./usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"),
			{Path: "./etc/os-release", Type: tar.TypeSymlink, Linkname: "../usr/lib/os-release"},
			dir("./usr/share/man/", 0o755),
			{Path: "./var/local/", Type: tar.TypeDir, Mode: 0o2775, GID: 50},
		}, doc("base-files")...)}
	}
	caFiles := []debiantest.File{
		dir("./etc/ca-certificates/update.d/", 0o755),
		{Path: "./usr/sbin/update-ca-certificates", Mode: 0o755, Data: "#!/bin/sh\n"},
		dir("./usr/share/ca-certificates/mozilla/", 0o755),
	}
	for _, name := range []string{"mozilla/Zeta_Root.crt", "mozilla/Alpha_Root.crt", "mozilla/ACCV_Root.crt"} {
		caFiles = append(caFiles, file("./usr/share/ca-certificates/"+name, string(certs[name])))
	}
	all := func(tz string) []debiantest.Deb {
		return []debiantest.Deb{
			{Name: "netbase", Version: "6.4", Files: append([]debiantest.File{file("./etc/services", "http 80/tcp\n")}, doc("netbase")...)},
			{Name: "tzdata", Version: tz, Depends: "debconf (>= 0.5) | debconf-2.0", DataCompression: "zst", Files: append([]debiantest.File{
				file("./usr/share/zoneinfo/Europe/Berlin", "TZif2 Berlin"),
				{Path: "./usr/share/zoneinfo/Europe/Busingen", Type: tar.TypeSymlink, Linkname: "Berlin"},
				file("./usr/share/lintian/overrides/tzdata", "x"),
			}, doc("tzdata")...)},
			{Name: "media-types", Version: "10.0.0", Files: []debiantest.File{file("./etc/mime.types", "text/plain txt\n")}},
			{Name: "ca-certificates", Version: "20230311", Depends: "openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0", Files: append(caFiles, doc("ca-certificates")...)},
		}
	}
	m := debiantest.NewMirror(t,
		debiantest.Suite{Name: "bookworm", Packages: map[string][]debiantest.Deb{
			"amd64": append(append(all("2024a-0+deb12u1"), baseFiles("amd64")), extra...),
			"arm64": append(append(all("2024a-0+deb12u1"), baseFiles("arm64")), extra...),
		}},
		debiantest.Suite{Name: "bookworm-updates", Packages: map[string][]debiantest.Deb{"amd64": nil, "arm64": nil}},
		debiantest.Suite{Name: "bookworm-security", Packages: map[string][]debiantest.Deb{
			"amd64": {{Name: "tzdata", Version: "2024b-0+deb12u1", Files: []debiantest.File{file("./usr/share/zoneinfo/Europe/Berlin", "TZif2 Berlin, newer")}}},
			"arm64": {{Name: "tzdata", Version: "2024b-0+deb12u1", Files: []debiantest.File{file("./usr/share/zoneinfo/Europe/Berlin", "TZif2 Berlin, newer")}}},
		}},
	)
	return &staticMirror{Mirror: m, certs: certs}
}

// image builds the base the way the builder does: each step compressed
// once into a file, the layers appended to an empty OCI image with the
// base's config. It returns the image and its layer digests.
func image(t *testing.T, b *builder.Base) (v1.Image, []v1.Hash) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var digests []v1.Hash
	for i, s := range b.Steps {
		path := filepath.Join(dir, filepath.Base(t.Name())+string(rune('a'+i))+".tar.gz")
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := layers.Compress(out, func(w io.Writer) error { return s.Build(ctx, w) })
		if err != nil {
			t.Fatalf("%s: Build() = %v", s.Name(), err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: layers.FromCompressedFile(path, desc), MediaType: types.OCILayer})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, desc.Digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = b.Config
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image() = %v", err)
	}
	return img, digests
}

type fsEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Linkname string
	Content  string
}

// flatten returns the image's file system, by path without a leading slash
// or trailing slash.
func flatten(t *testing.T, img v1.Image) map[string]fsEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := make(map[string]fsEntry)
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(hdr.Name)
		out[name] = fsEntry{Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Linkname: hdr.Linkname, Content: string(data)}
	}
}

type layerFile struct{ path, data string }

func toLayerFiles(in []layerFile) []layers.File {
	var out []layers.File
	for _, f := range in {
		out = append(out, layers.Bytes(f.path, 0o644, []byte(f.data)))
	}
	return out
}
