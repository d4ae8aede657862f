package executorimage

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/step"
)

// Default sources of the toolchains.
const (
	DefaultGoProxy     = "https://proxy.golang.org"
	DefaultNPMRegistry = "https://registry.npmjs.org"
)

// toolchainModule is the module the Go command downloads toolchains as.
const toolchainModule = "golang.org/toolchain"

// goModuleVersion is the toolchain module's version for a Go release on a
// Debian architecture (whose names Go shares for amd64 and arm64).
func goModuleVersion(goVersion, arch string) string {
	return "v0.0.1-go" + goVersion + ".linux-" + arch
}

// nodeArch maps a Debian architecture to Node's name for it.
func nodeArch(arch string) (string, error) {
	switch arch {
	case "amd64":
		return "x64", nil
	case "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("%s: kiln's executor images are made for amd64 and arm64", arch)
}

// tarballPath is an npm package version's tarball under the registry.
func (p NPMPackage) tarballPath() string {
	base := p.Package[strings.LastIndexByte(p.Package, '/')+1:]
	return p.Package + "/-/" + base + "-" + p.Version + ".tgz"
}

// sha512 returns the integrity's digest, hex-encoded.
func (p NPMPackage) sha512() (string, error) {
	b64, ok := strings.CutPrefix(p.Integrity, "sha512-")
	sum, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(sum) != sha512.Size {
		return "", fmt.Errorf("%q is not sha512-<base64 digest>", p.Integrity)
	}
	return hex.EncodeToString(sum), nil
}

// downloads fetches the pinned files into kiln's cache, where they are
// verified against their pins on every use.
type downloads struct {
	store       *cache.Store
	client      *http.Client
	goProxy     string
	npmRegistry string
}

// goZip returns the path of the toolchain's verified zip.
func (d *downloads) goZip(ctx context.Context, t GoToolchain) (string, error) {
	url := d.goProxy + "/" + toolchainModule + "/@v/" + t.Version + ".zip"
	l, err := d.store.File(ctx, cache.Toolchains, t.SHA256+".zip", cache.SHA256(t.SHA256, t.Size), func(path string) error {
		return d.fetch(ctx, url, path)
	})
	if err != nil {
		return "", fmt.Errorf("downloading the Go toolchain %s: %w", t.Version, err)
	}
	l.Close()
	return l.Path, nil
}

// npmTarball returns the path of the package's verified tarball, kept
// where the node pack keeps Node tarballs: a Node build both use is
// downloaded once.
func (d *downloads) npmTarball(ctx context.Context, p NPMPackage) (string, error) {
	sum, err := p.sha512()
	if err != nil {
		return "", err
	}
	url := d.npmRegistry + "/" + p.tarballPath()
	l, err := d.store.File(ctx, cache.NodeRuntimes, sum+".tgz", cache.SHA512(sum), func(path string) error {
		return d.fetch(ctx, url, path)
	})
	if err != nil {
		return "", fmt.Errorf("downloading %s@%s: %w", p.Package, p.Version, err)
	}
	l.Close()
	return l.Path, nil
}

// fetch writes what url serves to the file at path, which exists.
func (d *downloads) fetch(ctx context.Context, url, path string) error {
	body, err := d.get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	s := step.Start(ctx, "download "+url[strings.LastIndexByte(url, '/')+1:])
	_, err = io.Copy(s.Writer(f), body)
	s.End(err)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	return nil
}

// get returns the body of a 200 response to GET url.
func (d *downloads) get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// zipHash returns the go.sum hash ("h1:…") of a module zip's files, as
// golang.org/x/mod/sumdb/dirhash.HashZip computes it: the SHA256 of the
// sorted lines "<sha256 hex>  <name>\n", base64-encoded.
func zipHash(path string) (string, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return "", err
	}
	defer z.Close()
	files := make(map[string]*zip.File, len(z.File))
	names := make([]string, 0, len(z.File))
	for _, f := range z.File {
		if strings.Contains(f.Name, "\n") {
			return "", errors.New("a file name in the zip has a newline")
		}
		if _, dup := files[f.Name]; dup {
			return "", fmt.Errorf("%s is in the zip twice", f.Name)
		}
		files[f.Name] = f
		names = append(names, f.Name)
	}
	sort.Strings(names)
	summary := sha256.New()
	for _, name := range names {
		r, err := files[name].Open()
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", name, err)
		}
		fmt.Fprintf(summary, "%x  %s\n", h.Sum(nil), name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(summary.Sum(nil)), nil
}
