package dockerfile

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/layers"
)

// fakeRunner stands in for the sandbox: it understands a few commands of
// the last argument, joined by &&, and writes their effect as a layer.
//
//	echo WORDS > PATH   a file holding WORDS and a newline
//	mkdir PATH          a folder
//	rm PATH             a whiteout
//	spec > PATH         the RunSpec as JSON, without host paths
//	cat SRC > PATH      a copy of a bind-mounted host file
//	true                nothing
//	false               fails
//
// Paths are relative to the spec's working directory. A script mounted
// from a heredoc runs its lines the same way.
type fakeRunner struct {
	// lenient makes unknown commands do nothing, for real Dockerfiles.
	lenient bool
	mu      sync.Mutex
	// specs are the specs run, host paths left out.
	specs []RunSpec
}

func (r *fakeRunner) runs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.specs)
}

func (r *fakeRunner) Run(ctx context.Context, lower []v1.Layer, spec RunSpec) (v1.Layer, error) {
	r.mu.Lock()
	r.specs = append(r.specs, withoutHostPaths(spec))
	r.mu.Unlock()
	script := strings.Join(spec.Args, " ")
	if len(spec.Args) == 3 && spec.Args[1] == "-c" {
		script = spec.Args[2]
	}
	for _, m := range spec.Mounts {
		if m.Type == MountBind && m.Target == spec.Args[0] {
			b, err := os.ReadFile(m.Source)
			if err != nil {
				return nil, err
			}
			script = string(b)
		}
	}
	var files []layers.File
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.Split(l, "&&")...)
		}
	}
	abs := func(p string) string {
		if path.IsAbs(p) {
			return strings.TrimPrefix(p, "/")
		}
		return strings.TrimPrefix(path.Join(spec.Workdir, p), "/")
	}
	for _, cmd := range lines {
		fields := strings.Fields(cmd)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "true":
		case "false":
			return nil, errors.New("exit status 1")
		case "mkdir":
			files = append(files, layers.Dir(abs(fields[len(fields)-1]), 0o755))
		case "rm":
			p := abs(fields[1])
			files = append(files, layers.Bytes(path.Join(path.Dir(p), ".wh."+path.Base(p)), 0, nil))
		case "echo":
			i := slices.Index(fields, ">")
			if i < 0 {
				continue
			}
			files = append(files, layers.Bytes(abs(fields[i+1]), 0o644, []byte(strings.Join(fields[1:i], " ")+"\n")))
		case "spec":
			b, err := json.Marshal(withoutHostPaths(spec))
			if err != nil {
				return nil, err
			}
			files = append(files, layers.Bytes(abs(fields[2]), 0o644, b))
		case "cat":
			src := fields[1]
			var data []byte
			for _, m := range spec.Mounts {
				if m.Type == MountBind && strings.HasPrefix(src, m.Target) {
					b, err := os.ReadFile(path.Join(m.Source, strings.TrimPrefix(src, m.Target)))
					if err != nil {
						return nil, err
					}
					data = b
				}
			}
			files = append(files, layers.Bytes(abs(fields[3]), 0o644, data))
		default:
			if !r.lenient {
				return nil, fmt.Errorf("fake runner: unknown command %q", fields[0])
			}
		}
	}
	return tarLayer(files)
}

func withoutHostPaths(spec RunSpec) RunSpec {
	mounts := spec.Mounts
	spec.Mounts = nil
	for _, m := range mounts {
		if m.Source != "" {
			m.Source = "(host)"
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	return spec
}

func tarLayer(files []layers.File) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := layers.WriteTar(&buf, files); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// baseSpec describes a base image of a test case.
type baseSpec struct {
	// Files maps paths to contents; a path ending in / is a folder, and
	// content starting with "-> " a symlink.
	Files  map[string]string `json:"files"`
	Config v1.Config         `json:"config"`
	// NoHistory leaves the image's history empty.
	NoHistory bool `json:"no_history,omitempty"`
}

// fakeBases resolves the bases a case describes.
type fakeBases map[string]baseSpec

func (b fakeBases) Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error) {
	spec, ok := b[ref]
	if !ok {
		return nil, fmt.Errorf("no image %s", ref)
	}
	var files []layers.File
	for p, content := range spec.Files {
		switch {
		case strings.HasSuffix(p, "/"):
			files = append(files, layers.Dir(strings.TrimSuffix(p, "/"), 0o755))
		case strings.HasPrefix(content, "-> "):
			files = append(files, layers.Symlink(p, strings.TrimPrefix(content, "-> ")))
		default:
			files = append(files, layers.Bytes(p, 0o644, []byte(content)))
		}
	}
	l, err := tarLayer(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = spec.Config
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	if !spec.NoHistory {
		cf.History = []v1.History{{CreatedBy: "base " + ref}}
	}
	return mutate.ConfigFile(img, cf)
}

// listLayer describes a layer's entries, one line each:
// "path mode uid:gid" and the content of a file or a link's target.
func listLayer(l v1.Layer) ([]string, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		line := fmt.Sprintf("%s %04o %d:%d", hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			line += " -> " + hdr.Linkname
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			if len(b) > 64 || !utf8.Valid(b) {
				line += fmt.Sprintf(" (%d bytes, sha256:%x)", len(b), sha256.Sum256(b))
			} else {
				line += fmt.Sprintf(" %q", b)
			}
		}
		out = append(out, line)
	}
}
