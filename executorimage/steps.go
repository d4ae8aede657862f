package executorimage

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/layers"
)

// Where the toolchains live in the images.
const (
	GoRoot     = "/usr/local/go"
	nodeModDir = "usr/local/lib/node_modules"
)

// goStep lays the Go toolchain out at GoRoot, as the go command unpacks
// a toolchain it switches to: the module's files, with the execute bit on
// bin/ and pkg/tool/<goos>_<goarch>/ (a module zip keeps no modes).
type goStep struct {
	goVersion, arch string
	t               GoToolchain
	dl              *downloads
}

var _ layers.Step = (*goStep)(nil)

func (s *goStep) Name() string { return "go " + s.goVersion + " toolchain" }

func (s *goStep) Key(context.Context) (v1.Hash, error) {
	return layers.NewKey("kiln/executor-image/go/v1").Strings(s.t.Version, s.t.Hash, s.t.SHA256).Sum(), nil
}

func (s *goStep) Build(ctx context.Context, w io.Writer) error {
	zipPath, err := s.dl.goZip(ctx, s.t)
	if err != nil {
		return err
	}
	dir, remove, err := s.dl.store.TempDir("go-toolchain-")
	if err != nil {
		return err
	}
	defer remove()
	z, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("opening the Go toolchain %s: %w", s.t.Version, err)
	}
	defer z.Close()
	prefix := toolchainModule + "@" + s.t.Version + "/"
	tool := "pkg/tool/linux_" + s.arch + "/"
	var files []layers.File
	for i, f := range z.File {
		rel, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || rel == "" || strings.HasSuffix(rel, "/") {
			return fmt.Errorf("the Go toolchain %s has %s, outside %s", s.t.Version, f.Name, prefix)
		}
		src := filepath.Join(dir, fmt.Sprint(i))
		if err := unzipFile(f, src); err != nil {
			return fmt.Errorf("unpacking the Go toolchain %s: %w", s.t.Version, err)
		}
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, tool) {
			mode = 0o755
		}
		files = append(files, layers.HostFile(path.Join(GoRoot[1:], rel), mode, src))
	}
	return layers.WriteTar(w, files)
}

func unzipFile(f *zip.File, dst string) error {
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return out.Close()
}

// nodeStep installs Node and npm as Node's own Linux tarballs lay them
// out under /usr/local: bin/node, lib/node_modules/npm, and the npm and
// npx links into it.
type nodeStep struct {
	node, npm NPMPackage
	dl        *downloads
}

var _ layers.Step = (*nodeStep)(nil)

func (s *nodeStep) Name() string { return "node " + s.node.Version + ", npm " + s.npm.Version }

func (s *nodeStep) Key(context.Context) (v1.Hash, error) {
	return layers.NewKey("kiln/executor-image/node/v1").
		Strings(s.node.Package, s.node.Version, s.node.Integrity, s.npm.Package, s.npm.Version, s.npm.Integrity).Sum(), nil
}

func (s *nodeStep) Build(ctx context.Context, w io.Writer) error {
	nodeTgz, err := s.dl.npmTarball(ctx, s.node)
	if err != nil {
		return err
	}
	npmTgz, err := s.dl.npmTarball(ctx, s.npm)
	if err != nil {
		return err
	}
	dir, remove, err := s.dl.store.TempDir("node-toolchain-")
	if err != nil {
		return err
	}
	defer remove()
	files, err := untgz(nodeTgz, filepath.Join(dir, "node"), func(name string) (string, bool) {
		return "usr/local/bin/node", name == "bin/node"
	})
	if err != nil {
		return fmt.Errorf("unpacking %s@%s: %w", s.node.Package, s.node.Version, err)
	}
	if len(files) != 1 {
		return fmt.Errorf("unpacking %s@%s: no package/bin/node in it", s.node.Package, s.node.Version)
	}
	npmFiles, err := untgz(npmTgz, filepath.Join(dir, "npm"), func(name string) (string, bool) {
		return path.Join(nodeModDir, "npm", name), true
	})
	if err != nil {
		return fmt.Errorf("unpacking npm@%s: %w", s.npm.Version, err)
	}
	for i, f := range npmFiles {
		// npm sets the execute bit on a package's bin entries when it
		// installs one; the tarball may not have it.
		if f.Path == nodeModDir+"/npm/bin/npm-cli.js" || f.Path == nodeModDir+"/npm/bin/npx-cli.js" {
			npmFiles[i].Mode = 0o755
		}
	}
	files = append(files, npmFiles...)
	files = append(files,
		layers.Symlink("usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js"),
		layers.Symlink("usr/local/bin/npx", "../lib/node_modules/npm/bin/npx-cli.js"))
	return layers.WriteTar(w, files)
}

// untgz unpacks the regular files and symlinks of an npm tarball's
// package/ folder that place maps to an image path, into dir, and returns
// them as layer files: mode 0755 when any execute bit is set, else 0644.
func untgz(tgz, dir string, place func(name string) (string, bool)) ([]layers.File, error) {
	f, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var files []layers.File
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		name, ok := strings.CutPrefix(path.Clean(h.Name), "package/")
		if !ok {
			continue
		}
		dst, ok := place(name)
		if !ok {
			continue
		}
		switch h.Typeflag {
		case tar.TypeReg:
			src := filepath.Join(dir, fmt.Sprint(i))
			out, err := os.OpenFile(src, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return nil, fmt.Errorf("%s: %w", h.Name, err)
			}
			if err := out.Close(); err != nil {
				return nil, err
			}
			mode := fs.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			files = append(files, layers.HostFile(dst, mode, src))
		case tar.TypeSymlink:
			files = append(files, layers.Symlink(dst, h.Linkname))
		}
	}
}

// mergeStep writes the layers of several steps as one: the Debian
// packages of a group are a few dozen layers, and an image of every
// toolchain would pass the limit of layers a container runtime stacks
// (about 120 with overlayfs). The steps are built in parallel and their
// entries written in order; a directory given again keeps its first
// entry, and any other path given twice is an error.
type mergeStep struct {
	name  string
	steps []layers.Step
	// tmp returns a scratch folder and its remover.
	tmp func(pattern string) (string, func() error, error)
}

var _ layers.Step = (*mergeStep)(nil)

func (s *mergeStep) Name() string { return s.name }

func (s *mergeStep) Key(ctx context.Context) (v1.Hash, error) {
	k := layers.NewKey("kiln/executor-image/merge/v1")
	for _, st := range s.steps {
		h, err := st.Key(ctx)
		if err != nil {
			return v1.Hash{}, err
		}
		k.Hash(h)
	}
	return k.Sum(), nil
}

func (s *mergeStep) Build(ctx context.Context, w io.Writer) error {
	dir, remove, err := s.tmp("merge-")
	if err != nil {
		return err
	}
	defer remove()
	parts := make([]string, len(s.steps))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, st := range s.steps {
		parts[i] = filepath.Join(dir, fmt.Sprint(i))
		g.Go(func() error {
			f, err := os.Create(parts[i])
			if err != nil {
				return err
			}
			err = st.Build(gctx, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", st.Name(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("building %s: %w", s.name, err)
	}
	tw := tar.NewWriter(w)
	seen := make(map[string]written)
	for i, p := range parts {
		if err := s.copyPart(tw, p, s.steps[i].Name(), seen); err != nil {
			return fmt.Errorf("building %s: %w", s.name, err)
		}
	}
	return tw.Close()
}

// written is a path mergeStep wrote: by which step, and whether it is a
// directory.
type written struct {
	step string
	dir  bool
}

// copyPart copies the entries of one step's tar into tw; seen holds the
// paths written so far.
func (s *mergeStep) copyPart(tw *tar.Writer, part, stepName string, seen map[string]written) error {
	f, err := os.Open(part)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the layer of %s: %w", stepName, err)
		}
		p := strings.TrimSuffix(h.Name, "/")
		isDir := h.Typeflag == tar.TypeDir
		if first, ok := seen[p]; ok {
			if isDir && first.dir {
				continue
			}
			return &layers.ConflictError{Path: p, First: first.step, Second: stepName}
		}
		seen[p] = written{step: stepName, dir: isDir}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
