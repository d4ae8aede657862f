package python

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

var (
	// flaskScript is the server of python3-http and python3-flask.
	//go:embed shim/flask.py
	flaskScript []byte
	// serverRequirements pins Flask, waitress and their dependencies,
	// with their hashes.
	//go:embed shim/server-requirements.txt
	serverRequirements []byte
)

// serverPackagesDir is where the server's Flask and waitress go, beside
// the function's packages, which come first on sys.path.
const serverPackagesDir = contract.AppDir + "/server-packages"

// serverPackagesStep installs serverRequirements with pip into
// /home/app/server-packages: a layer of its own, as the templates' image
// installs Flask and waitress before the function's requirements. Its key
// is the requirements file, the image's Python and platform, the host's
// Python and the pip settings, and not the function: every python3-http
// and python3-flask function built on one host shares it. Like the
// standard library's bytecode it keeps the epoch 0 for that reason.
type serverPackagesStep struct {
	pack   *Pack
	fn     languages.Function
	target target
}

func (s *serverPackagesStep) Name() string { return "flask and waitress" }

func (s *serverPackagesStep) Key(ctx context.Context) (v1.Hash, error) {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	k := layers.NewKey("python/server-packages/v1").
		String(string(serverRequirements)).
		Strings(pythonVersion, s.target.machine, s.fn.Platform.Variant).
		Strings(h.Version, h.Machine, h.Libc, h.OS)
	if err := s.pack.keyPipSettings(k); err != nil {
		return v1.Hash{}, err
	}
	return k.Sum(), nil
}

func (s *serverPackagesStep) Build(ctx context.Context, w io.Writer) error {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.fn.ScratchDir, "server")
	staging := filepath.Join(dir, "packages")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	requirements := filepath.Join(dir, "requirements.txt")
	if err := os.WriteFile(requirements, serverRequirements, 0o644); err != nil {
		return err
	}
	if err := s.pack.pipInstall(ctx, h, s.target, dir, requirements, staging, "", "--require-hashes", "--no-deps"); err != nil {
		return fmt.Errorf("installing Flask and waitress for the server: %w", err)
	}
	// Console scripts (flask) are of no use to the server.
	if err := os.RemoveAll(filepath.Join(staging, "bin")); err != nil {
		return err
	}
	if h.compiles() {
		s.pack.compile(ctx, h, staging, serverPackagesDir)
	}
	files, err := layers.FromDir(staging, serverPackagesDir)
	if err != nil {
		return err
	}
	return layers.WriteTar(w, files, layers.WithEpoch(time.Unix(0, 0).UTC()))
}
