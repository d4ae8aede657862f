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

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/internal/step"
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
	// strip is the strip command the key names and the build runs: found
	// once, so that the bytes stored under a key are the ones it promises.
	strip *lazy.Value[stripTool]
}

// stripTool is a strip command, or none ("" path, id "unstripped").
type stripTool struct{ path, id string }

func newRuntimeStep(p *Pack, rt *runtime) *runtimeStep {
	s := &runtimeStep{pack: p, rt: rt}
	s.strip = lazy.New(s.stripper)
	return s
}

func (s *runtimeStep) Name() string { return "node " + s.rt.Version + " runtime" }

// stripper finds the strip command for the architecture and says which one
// it is, so that the key changes with the tool. A build cancelled while it
// asks is an error, never "no strip": that would store an unstripped
// binary under the stripped one's key.
func (s *runtimeStep) stripper(ctx context.Context) (stripTool, error) {
	for _, name := range s.pack.opts.strip[s.rt.Arch] {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, p, "--version").Output()
		if ctx.Err() != nil {
			return stripTool{}, ctx.Err()
		}
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(out), "\n")
		return stripTool{path: p, id: name + " " + first}, nil
	}
	return stripTool{id: "unstripped"}, nil
}

func (s *runtimeStep) Key(ctx context.Context) (v1.Hash, error) {
	strip, err := s.strip.Get(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	id := strip.id
	// The epoch is not in the key: the layer keeps epoch 0 so that every
	// function on this Node shares it.
	return layers.NewKey("node/runtime/v2").String(s.rt.Package).String(s.rt.Version).String(s.rt.Integrity).String(id).Sum(), nil
}

func (s *runtimeStep) Build(ctx context.Context, w io.Writer) error {
	tgz, err := s.pack.download(ctx, s.rt)
	if err != nil {
		return err
	}
	store, err := s.pack.store()
	if err != nil {
		return err
	}
	dir, remove, err := store.TempDir("node-runtime-")
	if err != nil {
		return err
	}
	defer remove()
	bin := filepath.Join(dir, "node")
	if err := extractNode(tgz, bin); err != nil {
		return fmt.Errorf("unpacking %s: %w", s.rt.tarball(), err)
	}
	strip, err := s.strip.Get(ctx)
	if err != nil {
		return err
	}
	if strip.path != "" {
		// Symbols go too, not only debug sections: native addons link
		// against the dynamic symbol table, which strip keeps.
		out, err := exec.CommandContext(ctx, strip.path, "--strip-all", "-o", bin+".stripped", bin).CombinedOutput()
		if err != nil {
			return fmt.Errorf("stripping node with %s: %w: %s", strip.id, err, bytes.TrimSpace(out))
		}
		bin += ".stripped"
	} else {
		slog.WarnContext(ctx, "no strip for this architecture: the node binary ships with its debug information", "arch", s.rt.Arch, "tried", s.pack.opts.strip[s.rt.Arch])
	}
	return layers.WriteTar(w, []layers.File{layers.HostFile(nodePath, 0o755, bin)})
}

// download returns the path of the runtime's verified tarball, an entry of
// kind cache.NodeRuntimes, fetched from the registry unless the cache has
// it.
func (p *Pack) download(ctx context.Context, rt *runtime) (string, error) {
	sum, err := rt.sha512()
	if err != nil {
		return "", err
	}
	store, err := p.store()
	if err != nil {
		return "", err
	}
	url := p.opts.registry + "/" + rt.tarball()
	l, err := store.File(ctx, cache.NodeRuntimes, sum+".tgz", cache.SHA512(sum), func(path string) error {
		slog.InfoContext(ctx, "downloading the Node runtime", "url", url)
		return p.fetch(ctx, url, path)
	})
	var de *cache.DigestError
	if errors.As(err, &de) {
		got, _ := hex.DecodeString(de.Got.Hex)
		return "", &IntegrityError{URL: url, Want: rt.Integrity, Got: "sha512-" + base64.StdEncoding.EncodeToString(got)}
	}
	if err != nil {
		return "", err
	}
	l.Close()
	return l.Path, nil
}

// fetch writes what url serves to the file at path.
func (p *Pack) fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.opts.client.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	s := step.Start(ctx, "download "+url[strings.LastIndexByte(url, '/')+1:])
	s.SetTotal(max(resp.ContentLength, 0))
	_, err = io.Copy(s.Writer(f), resp.Body)
	s.End(err)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	return nil
}

// IntegrityError is a download whose digest is not the pinned one.
type IntegrityError struct {
	URL, Want, Got string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s: integrity is %s, runtimes.lock.json pins %s", e.URL, e.Got, e.Want)
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
