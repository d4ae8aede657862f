package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/layers"
)

//go:embed runtimes.lock.json
var runtimesLock []byte

// lockedRuntime is one pinned Node build in runtimes.lock.json.
type lockedRuntime struct {
	Package   string `json:"package"`
	Integrity string `json:"integrity"`
}

type lockedMajor struct {
	Version   string                   `json:"version"`
	Platforms map[string]lockedRuntime `json:"platforms"`
}

// runtime is the Node build one image runs.
type runtime struct {
	Major, Version, Arch string
	lockedRuntime
}

// tarball is the package's path under the registry, as npm lays it out.
func (r *runtime) tarball() string {
	return fmt.Sprintf("%s/-/%s-%s.tgz", r.Package, r.Package, r.Version)
}

// sha512 returns the integrity's digest, hex-encoded.
func (r *runtime) sha512() (string, error) {
	b64, ok := strings.CutPrefix(r.Integrity, "sha512-")
	if !ok {
		return "", fmt.Errorf("runtimes.lock.json: %s %s: integrity %q is not sha512", r.Package, r.Version, r.Integrity)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha512.Size {
		return "", fmt.Errorf("runtimes.lock.json: %s %s: integrity %q is not a sha512 digest", r.Package, r.Version, r.Integrity)
	}
	return hex.EncodeToString(sum), nil
}

// UnsupportedPlatformError is a platform no pinned Node build runs on.
type UnsupportedPlatformError struct {
	Major, Arch string
	Known       []string
}

func (e *UnsupportedPlatformError) Error() string {
	return fmt.Sprintf("no Node %s build for linux/%s; kiln has: %s", e.Major, e.Arch, strings.Join(e.Known, ", "))
}

func (p *Pack) runtime(major, arch string) (*runtime, error) {
	var lock map[string]lockedMajor
	if err := json.Unmarshal(runtimesLock, &lock); err != nil {
		return nil, fmt.Errorf("reading runtimes.lock.json: %w", err)
	}
	m, ok := lock[major]
	if !ok {
		return nil, fmt.Errorf("runtimes.lock.json has no Node %s", major)
	}
	locked, ok := m.Platforms[arch]
	if !ok {
		var known []string
		for a := range m.Platforms {
			known = append(known, "linux/"+a)
		}
		slices.Sort(known)
		return nil, &UnsupportedPlatformError{Major: major, Arch: arch, Known: known}
	}
	return &runtime{Major: major, Version: m.Version, Arch: arch, lockedRuntime: locked}, nil
}

// runtimeStep writes the node binary, stripped when a strip for the
// architecture is at hand.
type runtimeStep struct {
	pack *Pack
	rt   *runtime
}

func (s *runtimeStep) Name() string { return "node " + s.rt.Version + " runtime" }

// stripper finds the strip command for the architecture and says which one
// it is, so that the key changes with the tool.
func (s *runtimeStep) stripper(ctx context.Context) (path, id string) {
	for _, name := range s.pack.opts.strip[s.rt.Arch] {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, p, "--version").Output()
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(out), "\n")
		return p, name + " " + first
	}
	return "", "unstripped"
}

func (s *runtimeStep) Key(ctx context.Context) (v1.Hash, error) {
	_, id := s.stripper(ctx)
	// The epoch is not in the key: the layer keeps epoch 0 so that every
	// function on this Node shares it.
	return layers.NewKey("node/runtime/v2").String(s.rt.Package).String(s.rt.Version).String(s.rt.Integrity).String(id).Sum(), nil
}

func (s *runtimeStep) Build(ctx context.Context, w io.Writer) error {
	tgz, err := s.pack.download(ctx, s.rt)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.pack.tmpDir(), "runtime-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "node")
	if err := extractNode(tgz, bin); err != nil {
		return fmt.Errorf("unpacking %s: %w", s.rt.tarball(), err)
	}
	if strip, id := s.stripper(ctx); strip != "" {
		// Symbols go too, not only debug sections: native addons link
		// against the dynamic symbol table, which strip keeps.
		out, err := exec.CommandContext(ctx, strip, "--strip-all", "-o", bin+".stripped", bin).CombinedOutput()
		if err != nil {
			return fmt.Errorf("stripping node with %s: %w: %s", id, err, bytes.TrimSpace(out))
		}
		bin += ".stripped"
	} else {
		slog.WarnContext(ctx, "no strip for this architecture: the node binary ships with its debug information", "arch", s.rt.Arch, "tried", s.pack.opts.strip[s.rt.Arch])
	}
	return layers.WriteTar(w, []layers.File{layers.HostFile(nodePath, 0o755, bin)})
}

func (p *Pack) tmpDir() string {
	dir := filepath.Join(p.opts.cacheDir, "tmp")
	os.MkdirAll(dir, 0o755)
	return dir
}

// download returns the path of the runtime's verified tarball, fetched
// from the registry unless the cache has it.
func (p *Pack) download(ctx context.Context, rt *runtime) (string, error) {
	sum, err := rt.sha512()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(p.opts.cacheDir, "sha512")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, sum+".tgz")
	if got, err := fileSHA512(path); err == nil && got == sum {
		return path, nil
	}
	url := p.opts.registry + "/" + rt.tarball()
	slog.InfoContext(ctx, "downloading the Node runtime", "url", url)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := p.opts.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	err = atomicfile.WriteFrom(path, func(w io.Writer) error {
		h := sha512.New()
		if _, err := io.Copy(io.MultiWriter(w, h), resp.Body); err != nil {
			return fmt.Errorf("downloading %s: %w", url, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			return &IntegrityError{URL: url, Want: rt.Integrity, Got: "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil))}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// IntegrityError is a download whose digest is not the pinned one.
type IntegrityError struct {
	URL, Want, Got string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s: integrity is %s, runtimes.lock.json pins %s", e.URL, e.Got, e.Want)
}

func fileSHA512(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extractNode copies package/bin/node out of an npm node-linux-* tarball.
func extractNode(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return errors.New("no package/bin/node in the tarball")
		}
		if err != nil {
			return err
		}
		if h.Name != "package/bin/node" || h.Typeflag != tar.TypeReg {
			continue
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
}
