package bases

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// Where debianutils keeps the shells it and other packages declare, which
// its trigger (update-shells) turns into /etc/shells.
const (
	shellsTemplate = "usr/share/debianutils/shells"
	shellsDir      = "usr/share/debianutils/shells.d/"
)

// shellsStep builds the layer of /etc/shells and update-shells' state, as
// debianutils' postinst and trigger leave them once every package of the
// base is unpacked: it reads the shells.d files of all the packages, so it
// is a layer of its own, after theirs.
type shellsStep struct {
	base   string
	pkgs   []debian.Package
	merged []string
	dl     Fetcher
	epoch  time.Time
}

var _ layers.Step = (*shellsStep)(nil)

func (s *shellsStep) Name() string { return s.base + ": /etc/shells" }

func (s *shellsStep) Key(ctx context.Context) (v1.Hash, error) {
	k := layers.NewKey("kiln/base/debian-shells/v1").
		String(debian.ExtractVersion).
		Strings(s.merged...).
		String(s.epoch.Format(time.RFC3339Nano))
	for _, p := range s.pkgs {
		k.Strings(p.Name, p.Version, p.Architecture, p.SHA256, strconv.FormatInt(p.Size, 10))
	}
	return k.Sum(), nil
}

func (s *shellsStep) Build(ctx context.Context, w io.Writer) error {
	var template []byte
	declared := make(map[string][]byte) // shells.d file name -> content
	for _, p := range s.pkgs {
		files, cleanup, err := s.unpack(ctx, p)
		if err != nil {
			return fmt.Errorf("building /etc/shells: %w", err)
		}
		for _, f := range files {
			name, inDir := strings.CutPrefix(f.Path, shellsDir)
			if !f.Mode.IsRegular() || (f.Path != shellsTemplate && (!inDir || strings.Contains(name, "/"))) {
				continue
			}
			data, err := fileData(f)
			if err != nil {
				cleanup()
				return fmt.Errorf("building /etc/shells: %w", err)
			}
			if inDir {
				declared[name] = data
			} else {
				template = data
			}
		}
		cleanup()
	}
	if template == nil {
		return fmt.Errorf("building /etc/shells: no package ships /%s", shellsTemplate)
	}
	etc, state := updateShells(template, declared, s.merged)
	return layers.WriteTar(w, []layers.File{
		layers.Bytes("etc/shells", fileMode, etc),
		layers.Bytes("var/lib/shells.state", fileMode, state),
	}, layers.WithEpoch(s.epoch))
}

// unpack returns a package's files as the base lays them out, and a
// function that removes their extracted copies.
func (s *shellsStep) unpack(ctx context.Context, p debian.Package) ([]layers.File, func(), error) {
	deb, err := s.dl.Download(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "kiln-deb-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	c, err := debian.Extract(ctx, deb, dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return mergeUsr(c.Files, s.merged), cleanup, nil
}

// updateShells returns /etc/shells and /var/lib/shells.state as
// debianutils leaves them on a first install: /etc/shells starts as its
// template, then update-shells adds every shell the template and the
// shells.d files (in byte order of their names) declare, each also under
// its real path when its directory is a link into /usr.
func updateShells(template []byte, declared map[string][]byte, merged []string) (etc, state []byte) {
	var pkgShells []string
	add := func(data []byte) {
		for _, line := range strings.Split(string(data), "\n") {
			shell, _, _ := strings.Cut(line, "#")
			if shell == "" {
				continue
			}
			pkgShells = append(pkgShells, shell)
			if real := realShell(shell, merged); real != shell {
				pkgShells = append(pkgShells, real)
			}
		}
	}
	add(template)
	names := make([]string, 0, len(declared))
	for name := range declared {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		add(declared[name])
	}

	var out, st bytes.Buffer
	var listed []string
	for _, line := range strings.Split(strings.TrimSuffix(string(template), "\n"), "\n") {
		shell, _, _ := strings.Cut(line, "#")
		if shell != "" && slices.Contains(listed, shell) {
			continue
		}
		out.WriteString(line + "\n")
		listed = append(listed, shell)
	}
	// As in update-shells, a shell two packages declare is added twice.
	for _, shell := range pkgShells {
		st.WriteString(shell + "\n")
		if !slices.Contains(listed, shell) {
			out.WriteString(shell + "\n")
		}
	}
	return out.Bytes(), st.Bytes()
}

// realShell returns a shell's path with its directory resolved through
// the links of a merged /usr, as dpkg-realpath would.
func realShell(shell string, merged []string) string {
	rest, ok := strings.CutPrefix(shell, "/")
	if top, _, _ := strings.Cut(rest, "/"); ok && slices.Contains(merged, top) {
		return "/usr" + shell
	}
	return shell
}
